/** What a test client received, read in arrival order; next() waits, and fails once the connection closed. */
export class Inbox<T> {
  readonly items: T[] = [];
  private read = 0;
  private closed = false;
  private waiters: Array<() => void> = [];

  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** The connection closed: waiting readers fail once nothing is left to read. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /**
   * The next unread item; fails with `what` in the message after `timeoutMs`, or once the
   * connection closed with nothing left to read, instead of hanging until the test times out.
   */
  async next(what = `item #${this.read}`, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (this.read >= this.items.length) {
      if (this.closed) throw new Error(`closed while waiting for ${what}; received ${this.describe()}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.items[this.read++] as T;
  }

  async take(count: number): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next());
    return out;
  }

  /** Received but not read yet. */
  get unread(): number {
    return this.items.length - this.read;
  }

  /** What arrived so far, short enough for an error message. */
  private describe(): string {
    const shown = JSON.stringify(this.items.slice(-5), (_key, value: unknown) =>
      Buffer.isBuffer(value) ? value.toString('utf8') : value,
    );
    return `${this.items.length} item(s), last: ${shown.length > 300 ? `${shown.slice(0, 300)}…` : shown}`;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
