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

  async next(): Promise<T> {
    while (this.read >= this.items.length) {
      if (this.closed) throw new Error(`closed while waiting for item #${this.read}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
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

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
