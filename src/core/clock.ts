/** Time source of the core. Everything that waits takes a Clock so tests can move time by hand. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic enough for timeouts (epoch-based for the system clock). */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  setInterval(fn: () => void, ms: number): Timer;
}

/** Node fires any delay above this after 1 ms (TimeoutOverflowWarning); `30d` is a valid duration. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    // Longer delays are waited for in steps of the longest delay Node supports.
    let handle: NodeJS.Timeout;
    const arm = (remaining: number) => {
      const step = Math.min(remaining, MAX_TIMER_DELAY_MS);
      handle = setTimeout(() => (remaining > step ? arm(remaining - step) : fn()), step);
      handle.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(handle) };
  },
  setInterval(fn, ms) {
    const handle = setInterval(fn, Math.min(ms, MAX_TIMER_DELAY_MS));
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
};

interface ManualTimer {
  at: number;
  every: number | null;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that only moves when told to; timers fire in order during advance(). */
export class ManualClock implements Clock {
  private time: number;
  private timers: ManualTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.schedule(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.schedule(fn, ms, Math.max(1, ms));
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = this.timers
        .filter((t) => !t.cancelled && t.at <= end)
        .sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.time = Math.max(this.time, next.at);
      if (next.every === null) next.cancelled = true;
      else next.at += next.every;
      next.fn();
    }
    this.time = end;
    this.timers = this.timers.filter((t) => !t.cancelled);
  }

  private schedule(fn: () => void, ms: number, every: number | null): Timer {
    const timer: ManualTimer = { at: this.time + Math.max(0, ms), every, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }
}
