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
