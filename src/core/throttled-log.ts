/** How often a repeated failure is logged. */
export const THROTTLED_LOG_EVERY_MS = 60_000;

/** Logs the first of a kind of failure each minute, saying how many were not logged since. */
export class ThrottledLog {
  private quietUntil = Number.NEGATIVE_INFINITY;
  private skipped = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The failure is over: calls `log` with the count of reports not logged since the last one,
   * if any report was made since the last recovery, and starts afresh (the next failure logs at once).
   */
  recovered(log: (skipped: number) => void): void {
    if (this.quietUntil === Number.NEGATIVE_INFINITY) return;
    const skipped = this.skipped;
    this.quietUntil = Number.NEGATIVE_INFINITY;
    this.skipped = 0;
    log(skipped);
  }

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
