import type { Clock, Timer } from '../clock.js';

/** Most sources whose reads are throttled at once (per front); past it the least recently seen starts afresh. */
export const MAX_THROTTLED_SOURCES = 10_000;

/**
 * The shortest wait: a source in debt by one message at a high rate would otherwise be resumed
 * (and its connections walked) a thousand times a second; this way each round admits a few.
 */
export const MIN_WAIT_MS = 5;

/** A connection held by its source's debt: told once the debt is repaid. */
export interface ThrottledConnection {
  resume(): void;
}

export interface SourceThrottleOptions {
  /** Messages (lines, frames) per second one source may send over all its connections, and the burst above it. */
  readonly messageRate: number;
  readonly messageBurst: number;
  /** Bytes per second one source may send over all its connections, and the burst above it. */
  readonly byteRate: number;
  readonly byteBurst: number;
  readonly clock: Clock;
  readonly maxSources?: number;
}

/** A token bucket that may go into debt (down to one burst) and says how long the debt takes to repay. */
class DebtBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  charge(count: number, now: number): void {
    this.refill(now);
    this.tokens = Math.max(-this.burst, this.tokens - count);
  }

  /** Milliseconds until the bucket is out of debt; 0 when it is not in debt. */
  debtMs(now: number): number {
    this.refill(now);
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }

  /** Whether the bucket is full (a source idle that long is as good as new). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  private refill(now: number): void {
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
      this.updatedAt = now;
    }
  }
}

interface Source {
  readonly messages: DebtBucket;
  readonly bytes: DebtBucket;
  /** Connections waiting for the debt to be repaid, in the order they are resumed (one served waits again at the back). */
  readonly waiting: Set<ThrottledConnection>;
  resuming: boolean;
  timer: Timer | null;
}

/**
 * A read budget per source (IPv4 address or IPv6 /64, see sourceKey) shared by all its
 * connections of one front, enforced by backpressure rather than by closing.
 *
 * Every message and its bytes are charged to the source's buckets. A message that arrives
 * while the source is in debt is not admitted: its connection waits (the caller stops reading
 * it and holds the message) and is resumed, in turn with the others of the source, once the
 * debt is repaid, by one timer per source. Since nothing is admitted in debt, the debt is at
 * most one message deep per bucket (and never past one burst). The map of sources is bounded
 * and kept in least-recently-seen order like SourceRateLimiter's; a source dropped to make room
 * resumes its connections and starts again with full buckets.
 */
export class SourceThrottle {
  private readonly sources = new Map<string, Source>();
  /** The source last touched: already at the recent end of `sources`. */
  private newest: string | null = null;
  private readonly maxSources: number;

  constructor(private readonly options: SourceThrottleOptions) {
    this.maxSources = options.maxSources ?? MAX_THROTTLED_SOURCES;
  }

  /**
   * Charges one message of `bytes` bytes to `source` if it is not in debt (true). Otherwise
   * (false) nothing is charged: `conn` must stop reading and keep the message, and its resume()
   * is called when the source may send again (it then admits the message again).
   */
  admit(source: string, conn: ThrottledConnection, bytes: number, messages = 1): boolean {
    const now = this.options.clock.now();
    const state = this.touch(source, now);
    if (state.timer !== null || this.debtMs(state, now) > 0) {
      this.wait(source, state, conn, now);
      return false;
    }
    state.messages.charge(messages, now);
    state.bytes.charge(bytes, now);
    return true;
  }

  /** A connection closed: it is no longer resumed. */
  forget(source: string, conn: ThrottledConnection): void {
    const state = this.sources.get(source);
    if (state === undefined) return;
    state.waiting.delete(conn);
    if (state.waiting.size === 0 && state.timer !== null && !state.resuming) {
      state.timer.cancel();
      state.timer = null;
    }
  }

  /** Sources tracked now. */
  get size(): number {
    return this.sources.size;
  }

  /** Connections waiting for their source's debt now, over all sources. */
  get waiting(): number {
    let count = 0;
    for (const state of this.sources.values()) count += state.waiting.size;
    return count;
  }

  private debtMs(state: Source, now: number): number {
    return Math.max(state.messages.debtMs(now), state.bytes.debtMs(now));
  }

  private wait(source: string, state: Source, conn: ThrottledConnection, now: number): void {
    state.waiting.add(conn);
    if (state.timer === null) this.arm(source, state, now);
  }

  private arm(source: string, state: Source, now: number): void {
    const ms = Math.max(MIN_WAIT_MS, Math.ceil(this.debtMs(state, now)));
    state.timer = this.options.clock.setTimeout(() => this.repaid(source, state), ms);
  }

  /**
   * The debt should be repaid: the waiting connections go on in turn until the source is in debt
   * again; one that waits again goes to the back of the line, the rest keep their places.
   */
  private repaid(source: string, state: Source): void {
    state.timer = null;
    if (this.sources.get(source) !== state) return;
    const now = this.options.clock.now();
    if (this.debtMs(state, now) > 0) return this.arm(source, state, now);
    state.resuming = true;
    try {
      for (const conn of [...state.waiting]) {
        // Back in debt: the rest keep their places for the next round.
        if (state.timer !== null || this.debtMs(state, this.options.clock.now()) > 0) break;
        if (!state.waiting.delete(conn)) continue;
        conn.resume();
      }
    } finally {
      state.resuming = false;
    }
    if (state.waiting.size > 0 && state.timer === null) this.arm(source, state, this.options.clock.now());
  }

  /** Its state, moved to the most recently seen end (a source sending on is not moved again). */
  private touch(source: string, now: number): Source {
    this.forgetIdle(now);
    let state = this.sources.get(source);
    if (state === undefined) {
      const { messageRate, messageBurst, byteRate, byteBurst } = this.options;
      state = {
        messages: new DebtBucket(messageRate, messageBurst, now),
        bytes: new DebtBucket(byteRate, byteBurst, now),
        waiting: new Set(),
        resuming: false,
        timer: null,
      };
      if (this.sources.size >= this.maxSources) this.dropOldest();
      this.sources.set(source, state);
    } else if (this.newest !== source) {
      this.sources.delete(source);
      this.sources.set(source, state);
    }
    this.newest = source;
    return state;
  }

  /** Forgets sources from the least recently seen on while they are idle: nobody waiting and both buckets full. */
  private forgetIdle(now: number): void {
    for (const [source, state] of this.sources) {
      if (state.waiting.size > 0 || state.resuming || !state.messages.full(now) || !state.bytes.full(now)) return;
      this.sources.delete(source);
    }
  }

  /** Makes room: the least recently seen source is dropped, and whoever waited for it reads again. */
  private dropOldest(): void {
    const oldest = this.sources.entries().next();
    if (oldest.done === true) return;
    const [source, state] = oldest.value;
    this.sources.delete(source);
    state.timer?.cancel();
    state.timer = null;
    const waiting = [...state.waiting];
    state.waiting.clear();
    // After the admit() that made room: a resume admits again, and must not re-enter it.
    queueMicrotask(() => {
      for (const conn of waiting) conn.resume();
    });
  }
}
