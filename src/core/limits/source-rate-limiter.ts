import type { Clock } from '../clock.js';
import { TokenBucket } from './token-bucket.js';

/** Most source addresses whose HTTP request rate is tracked at once. */
export const MAX_TRACKED_SOURCES = 10_000;

interface Tracked {
  readonly bucket: TokenBucket;
  seenAt: number;
}

/**
 * One token bucket per source address, in a bounded map that forgets idle sources.
 *
 * A source idle for as long as its bucket takes to refill is indistinguishable from a new one,
 * so it is dropped. The map is kept in least-recently-seen order (touched entries move to the
 * end), which makes forgetting the idle ones a walk from the front that stops at the first busy
 * entry: O(1) amortised per request. Past `maxSources` busy sources, the least recently seen is
 * dropped anyway (it starts again with a full bucket): memory stays bounded even when many
 * addresses are busy at once.
 */
export class SourceRateLimiter {
  private readonly sources = new Map<string, Tracked>();
  /** How long a bucket takes to refill from its deepest debt (see charge): idle this long, a source is forgotten. */
  private readonly idleMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
    private readonly maxSources = MAX_TRACKED_SOURCES,
  ) {
    this.idleMs = Math.ceil((2 * burst * 1000) / ratePerSecond);
  }

  /** Takes one token for `source`; false when it is over its rate. */
  take(source: string): boolean {
    return this.touch(source).take();
  }

  /** Whether `source` has a token now, taking none (an unknown source has a full bucket). */
  has(source: string): boolean {
    return this.sources.get(source)?.bucket.has() ?? true;
  }

  /** Takes a token from `source` whether it has one or not (see TokenBucket.charge: a backoff). */
  charge(source: string): void {
    this.touch(source).charge();
  }

  private touch(source: string): TokenBucket {
    const now = this.clock.now();
    this.forgetIdle(now);
    let tracked = this.sources.get(source);
    if (tracked === undefined) {
      tracked = { bucket: new TokenBucket(this.ratePerSecond, this.burst, this.clock), seenAt: now };
      if (this.sources.size >= this.maxSources) this.dropOldest();
    } else {
      this.sources.delete(source);
      tracked.seenAt = now;
    }
    this.sources.set(source, tracked);
    return tracked.bucket;
  }

  /** Sources tracked now (for tests and /health). */
  get size(): number {
    return this.sources.size;
  }

  private forgetIdle(now: number): void {
    for (const [source, tracked] of this.sources) {
      if (now - tracked.seenAt < this.idleMs) return;
      this.sources.delete(source);
    }
  }

  private dropOldest(): void {
    const oldest = this.sources.keys().next();
    if (oldest.done !== true) this.sources.delete(oldest.value);
  }
}
