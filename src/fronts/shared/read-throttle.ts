// The per-source read budget of a front (README, Limits: NORAY_SOURCE_*), and the per-connection
// glue that holds a connection's messages while its source is in debt.
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../core/clock.js';
import { SourceThrottle, type ThrottledConnection } from '../../core/limits/source-throttle.js';

/** What one source (IPv4 address, IPv6 /64) may send over all its connections of one front. */
export interface SourceLimits {
  readonly sourceMessageRate: number;
  readonly sourceMessageBurst: number;
  readonly sourceByteRate: number;
  readonly sourceByteBurst: number;
}

/** The per-source limits of the config, for a front's options. */
export function sourceLimits(config: Config): SourceLimits {
  return {
    sourceMessageRate: config.sourceMessageRate,
    sourceMessageBurst: config.sourceMessageBurst,
    sourceByteRate: config.sourceByteRate,
    sourceByteBurst: config.sourceByteBurst,
  };
}

/** One front's throttle: every connection of the front shares it. */
export function createSourceThrottle(limits: SourceLimits, clock: Clock): SourceThrottle {
  return new SourceThrottle({
    messageRate: limits.sourceMessageRate,
    messageBurst: limits.sourceMessageBurst,
    byteRate: limits.sourceByteRate,
    byteBurst: limits.sourceByteBurst,
    clock,
  });
}

/** What a ThrottledReader does with its connection. */
export interface ReaderIo<T> {
  /** Stop reading from the socket, and read again (after a wait). */
  pause(): void;
  resume(): void;
  /** Told when the connection starts waiting for its source (to count it as `source_rate`). */
  throttled(): void;
  /** Bytes an item is charged. */
  size(item: T): number;
  /** Handles an admitted item, in arrival order. */
  handle(item: T): void;
  /** False once the connection reads nothing more (closing, closed): held items are dropped. */
  open(): boolean;
  /** Runs the handling of items held over a wait (e.g. corked); default: as is. */
  batch?(run: () => void): void;
}

/**
 * The messages of one connection, each admitted by its source's budget before it is handled.
 * While the source is in debt, the connection stops reading (pause) and holds what it had
 * already received; when the debt is repaid it handles those, in order, then reads again. What
 * is held is bounded by what was read before the pause took effect (one socket read).
 */
export class ThrottledReader<T> implements ThrottledConnection {
  private held: T[] = [];
  private next = 0;
  private waiting = false;

  constructor(
    private readonly throttle: SourceThrottle,
    private readonly source: string,
    private readonly io: ReaderIo<T>,
  ) {}

  /** Whether the connection waits for its source now. */
  get paused(): boolean {
    return this.waiting;
  }

  push(item: T): void {
    if (this.waiting) {
      this.held.push(item);
      return;
    }
    if (this.throttle.admit(this.source, this, this.io.size(item))) {
      this.io.handle(item);
      return;
    }
    this.held.push(item);
    this.waiting = true;
    this.io.pause();
    this.io.throttled();
  }

  /** The source's debt is repaid (called by the throttle). */
  resume(): void {
    if (!this.waiting) return;
    const drain = () => {
      while (this.next < this.held.length) {
        if (!this.io.open()) break;
        const item = this.held[this.next] as T;
        // Still (again) in debt: the throttle calls resume() once more later.
        if (!this.throttle.admit(this.source, this, this.io.size(item))) return false;
        this.next++;
        this.io.handle(item);
      }
      return true;
    };
    const done = this.io.batch ? this.batched(drain) : drain();
    if (!done) return;
    this.held = [];
    this.next = 0;
    this.waiting = false;
    if (this.io.open()) this.io.resume();
  }

  /** The connection closed: nothing more is handled, and the throttle forgets it. */
  close(): void {
    this.throttle.forget(this.source, this);
    this.held = [];
    this.next = 0;
  }

  private batched(drain: () => boolean): boolean {
    let done = false;
    this.io.batch?.(() => void (done = drain()));
    return done;
  }
}
