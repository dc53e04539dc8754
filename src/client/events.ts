// A small typed event emitter that runs in browsers and Node alike (node:events does not exist in
// browsers). Unlike Node's EventEmitter, an 'error' event without a listener is not thrown.

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();
  private waiters = new Set<() => void>();

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  /**
   * The next `event` (that `accept` accepts, if given). Rejects after `timeoutMs`, or when the
   * emitter ends (`end()`, e.g. its connection closed) before it arrives.
   */
  once<K extends keyof Events>(event: K, options: { timeoutMs?: number; accept?: (value: Events[K]) => boolean } = {}): Promise<Events[K]> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<Events[K]>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        off();
        this.waiters.delete(ended);
      };
      const ended = (): void => {
        done();
        reject(new Error(`closed while waiting for ${String(event)}`));
      };
      const off = this.on(event, (value) => {
        if (options.accept !== undefined && !options.accept(value)) return;
        done();
        resolve(value);
      });
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(event)}`));
      }, timeoutMs);
      this.waiters.add(ended);
    });
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) (listener as Listener<Events[K]>)(value);
  }

  /** Rejects every pending once(): nothing more will arrive. */
  protected rejectPending(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const waiter of waiters) waiter();
  }
}

/**
 * Keeps the listed events of an emitter from now on, in arrival order, so a caller can await them
 * one after another without missing one that arrived in between (once() sees only events after
 * it is called). next(event) takes the first unread event of that kind; others stay unread. Holds
 * at most `limit` unread events: past it the oldest is dropped and counted in `dropped`. A
 * `close` event of the emitter ends it: later next() calls for events not already kept reject.
 */
export class EventQueue<Events extends Record<string, unknown>> {
  private readonly unread: Array<{ readonly event: keyof Events; readonly value: unknown }> = [];
  private readonly offs: Array<() => void>;
  private waiters = new Set<() => void>();
  private ended = false;
  dropped = 0;

  constructor(
    emitter: Emitter<Events>,
    events: ReadonlyArray<keyof Events>,
    private readonly limit = 1024,
  ) {
    this.offs = events.map((event) => emitter.on(event, (value) => this.push(event, value)));
    this.offs.push(emitter.on('close' as keyof Events, () => this.end()));
  }

  /** The first unread `event`, waiting up to timeoutMs for it. */
  async next<K extends keyof Events>(event: K, timeoutMs = 10_000): Promise<Events[K]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.unread.findIndex((entry) => entry.event === event);
      if (index >= 0) return this.unread.splice(index, 1)[0]?.value as Events[K];
      if (this.ended) throw new Error(`closed while waiting for ${String(event)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${String(event)}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** Unread events of this kind. */
  count(event: keyof Events): number {
    return this.unread.filter((entry) => entry.event === event).length;
  }

  /** Stops keeping events; waiting next() calls reject. */
  close(): void {
    for (const off of this.offs.splice(0)) off();
    this.end();
  }

  private push(event: keyof Events, value: unknown): void {
    this.unread.push({ event, value });
    if (this.unread.length > this.limit) {
      this.unread.shift();
      this.dropped++;
    }
    this.wake();
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
