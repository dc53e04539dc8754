import type { Clock } from '../clock.js';

/** Allows `ratePerSecond` events on average with bursts up to `burst`; refilled lazily on take(). */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.updatedAt = clock.now();
  }

  take(count = 1): boolean {
    this.refill();
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }

  /** Whether `count` tokens are there now, taking none. */
  has(count = 1): boolean {
    this.refill();
    return this.tokens >= count;
  }

  /**
   * Takes `count` tokens even when they are not there, down to a debt of one burst: a source that
   * keeps trying while refused stays refused, and one that stops waits out its debt (a backoff).
   */
  charge(count = 1): void {
    this.refill();
    this.tokens = Math.max(-this.burst, this.tokens - count);
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.ratePerSecond) / 1000);
      this.updatedAt = now;
    }
  }
}
