import type { Clock, Timer } from '../clock.js';

/** Schedules through a Clock and counts what is still pending, so leak tests can assert zero. */
export class TrackedTimers {
  private readonly live = new Set<Timer>();

  constructor(private readonly clock: Clock) {}

  get pending(): number {
    return this.live.size;
  }

  timeout(fn: () => void, ms: number): Timer {
    let inner: Timer | null = null;
    const handle: Timer = {
      cancel: () => {
        inner?.cancel();
        this.live.delete(handle);
      },
    };
    inner = this.clock.setTimeout(() => {
      this.live.delete(handle);
      fn();
    }, ms);
    this.live.add(handle);
    return handle;
  }

  interval(fn: () => void, ms: number): Timer {
    const inner = this.clock.setInterval(fn, ms);
    const handle: Timer = {
      cancel: () => {
        inner.cancel();
        this.live.delete(handle);
      },
    };
    this.live.add(handle);
    return handle;
  }

  cancelAll(): void {
    for (const timer of [...this.live]) timer.cancel();
  }
}
