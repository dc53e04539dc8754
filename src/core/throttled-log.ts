/** How often a repeated failure is logged. */
export const THROTTLED_LOG_EVERY_MS = 60_000;

/** Logs the first of a kind of failure each minute, saying how many were not logged since. */
export class ThrottledLog {
  private quietUntil = Number.NEGATIVE_INFINITY;
  private skipped = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Calls `log` (with the count of skipped reports) unless one was logged within the minute. */
  report(log: (skipped: number) => void): void {
    const at = this.now();
    if (at < this.quietUntil) {
      this.skipped++;
      return;
    }
    this.quietUntil = at + THROTTLED_LOG_EVERY_MS;
    const skipped = this.skipped;
    this.skipped = 0;
    log(skipped);
  }
}
