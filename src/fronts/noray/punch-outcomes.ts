import type { Clock } from '../../core/clock.js';

/**
 * How often punchthrough fails, as the server can see it: a pair that was answered `connect` (go
 * and punch through) and asks for `connect-relay` for the same host soon after has given up on
 * punching. netfox falls back to the relay after its handshake times out (seconds), so a window
 * of half a minute catches its fallbacks without counting a relay asked for much later.
 */
export class PunchthroughOutcomes {
  /** Pair -> when it was answered `connect`; a Map iterates oldest first, which is the eviction order. */
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 30_000,
    /** Pairs remembered at once: bounded whatever the rate of connects. */
    private readonly maxPairs = 10_000,
  ) {}

  /** A pair was answered `connect`: true unless it already was within the window (a retry is one pair). */
  punched(requester: string, host: string): boolean {
    const now = this.clock.now();
    this.expire(now);
    const pair = `${requester}\n${host}`;
    const repeat = this.recent.delete(pair);
    this.recent.set(pair, now);
    this.expire(now);
    return !repeat;
  }

  /** A pair was answered `connect-relay`: true when it was told to punch through within the window (counted once). */
  fellBack(requester: string, host: string): boolean {
    const now = this.clock.now();
    this.expire(now);
    return this.recent.delete(`${requester}\n${host}`);
  }

  get size(): number {
    return this.recent.size;
  }

  private expire(now: number): void {
    for (const [pair, at] of this.recent) {
      if (now - at < this.windowMs && this.recent.size <= this.maxPairs) break;
      this.recent.delete(pair);
    }
  }
}
