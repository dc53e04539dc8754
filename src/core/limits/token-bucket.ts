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
    const now = this.clock.now();
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.ratePerSecond) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }
}
