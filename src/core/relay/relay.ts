import type { Endpoint } from '../endpoint.js';
import type { RelaySlot } from './port-pool.js';

/** Why a datagram was not forwarded. Indexes into the engine's drop counters. */
export const DROP_REASONS = [
  'unallocated',
  'no_permission',
  'mapping_locked',
  'relay_bandwidth',
  'global_bandwidth',
  'lifetime_duration',
  'lifetime_traffic',
  'send_error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
export const DROP = Object.fromEntries(DROP_REASONS.map((reason, index) => [reason, index])) as {
  readonly [R in DropReason]: number;
};
/** A lane's `heardAt` before its sender's first datagram. */
export const NEVER_HEARD = Number.NEGATIVE_INFINITY;

/** Returned by admit() when the datagram may pass. */
export const ADMIT = -1;

export interface RelayLimits {
  /** Bytes one player may send per traffic slice. */
  readonly bytesPerSlice: number;
  readonly sliceMs: number;
  readonly maxLifetimeMs: number;
  readonly maxLifetimeBytes: number;
}

/** Bytes per slice from a bytes-per-second limit. */
export function bytesPerSlice(bytesPerSecond: number, sliceMs: number): number {
  return Math.floor((bytesPerSecond * sliceMs) / 1000);
}

/** Nested map keyed by port, then address: lookups by a datagram's source allocate nothing. */
export class EndpointMap<V> {
  private readonly byPort = new Map<number, Map<string, V>>();
  private count = 0;

  get(port: number, address: string): V | undefined {
    return this.byPort.get(port)?.get(address);
  }

  set(endpoint: Endpoint, value: V): void {
    let byAddress = this.byPort.get(endpoint.port);
    if (!byAddress) {
      byAddress = new Map();
      this.byPort.set(endpoint.port, byAddress);
    }
    if (!byAddress.has(endpoint.address)) this.count++;
    byAddress.set(endpoint.address, value);
  }

  /** Deletes the entry only if it still holds `value`. */
  delete(endpoint: Endpoint, value: V): void {
    const byAddress = this.byPort.get(endpoint.port);
    if (byAddress?.get(endpoint.address) !== value) return;
    byAddress.delete(endpoint.address);
    this.count--;
    if (byAddress.size === 0) this.byPort.delete(endpoint.port);
  }

  get size(): number {
    return this.count;
  }

  *values(): Generator<V> {
    for (const byAddress of [...this.byPort.values()]) yield* [...byAddress.values()];
  }
}

/**
 * One registered endpoint taking part in relays (a game host or client). It owns one relay port,
 * or more where two of its peers sit behind one IP, and the send budget the relay limits count.
 */
export class Player {
  /** Relay ports this player is reached on; the first is the one later peers share. */
  readonly relays: Relay[] = [];
  /** Lanes this player sends on, by the player they lead to. */
  readonly lanes = new Map<Player, Lane>();
  totalBytes = 0;
  private sliceEnd = 0;
  private sliceBytes = 0;

  constructor(
    /** The registered endpoint, with the address in the relay sockets' form. Moves on re-registration. */
    public endpoint: Endpoint,
    readonly createdAt: number,
  ) {}

  /** Counts a datagram this player sends through the server; returns ADMIT or a DROP index. */
  admit(size: number, now: number, limits: RelayLimits): number {
    if (now - this.createdAt >= limits.maxLifetimeMs) return DROP.lifetime_duration;
    if (this.totalBytes + size > limits.maxLifetimeBytes) return DROP.lifetime_traffic;
    if (now >= this.sliceEnd) {
      this.sliceEnd = now + limits.sliceMs;
      this.sliceBytes = 0;
    }
    if (this.sliceBytes + size > limits.bytesPerSlice) return DROP.relay_bandwidth;
    this.sliceBytes += size;
    this.totalBytes += size;
    return ADMIT;
  }
}

/** A relay port allocated to one player: its peers send here to reach that player. */
export class Relay {
  /** Datagram source (port, then address in the socket's form) -> the lane it travels on. */
  readonly sources = new EndpointMap<Lane>();
  /** Every lane arriving on this port, whether or not its sender has been heard yet. */
  readonly lanes: Lane[] = [];
  lastActive: number;
  /** Bytes forwarded that arrived on this port: relayed to its owner. */
  bytes = 0;

  constructor(
    readonly owner: Player,
    readonly slot: RelaySlot,
    now: number,
  ) {
    this.lastActive = now;
  }

  get port(): number {
    return this.slot.port;
  }
}

/**
 * One direction of a relayed pair: `sender` sends to `inbound` (the receiver's relay port), and the
 * server passes it on from `reverse.inbound` (the sender's relay port, as the receiver knows it)
 * to `reverse.reach` (where the receiver is heard on that port).
 */
export class Lane {
  reverse!: Lane;
  /** Where the sender is reached from `inbound`: its registered endpoint until it is heard elsewhere. */
  reach: Endpoint;
  /** A source learned on `inbound` for this sender (a NAT mapping other than its registered one). */
  learned: Endpoint | null = null;
  /** Last time a datagram from the sender arrived on `inbound`. */
  heardAt = NEVER_HEARD;

  constructor(
    readonly sender: Player,
    readonly inbound: Relay,
  ) {
    this.reach = sender.endpoint;
  }

  get receiver(): Player {
    return this.inbound.owner;
  }
}

/** Global bandwidth: one shared slice counter for every relay. */
export class GlobalTraffic {
  private sliceEnd = 0;
  private sliceBytes = 0;

  constructor(
    private readonly bytesPerSliceLimit: number,
    private readonly sliceMs: number,
  ) {}

  admit(size: number, now: number): boolean {
    if (now >= this.sliceEnd) {
      this.sliceEnd = now + this.sliceMs;
      this.sliceBytes = 0;
    }
    if (this.sliceBytes + size > this.bytesPerSliceLimit) return false;
    this.sliceBytes += size;
    return true;
  }
}

/**
 * Who a relay port is charged to: the requester whose `connect-relay` made it (its source key and
 * session), also for the port made on the host's side, so one source cannot use up another's share.
 * The charge stays until the port is freed, also after the session ended.
 */
export interface RelayCharge {
  readonly source: string;
  readonly session: string;
}

/**
 * Relay ports charged to sources and sessions, for the caps of both engines: a charge stays on its
 * port until the port is freed, also after the session ended.
 */
export class RelayCharges<R extends object> {
  private readonly bySource = new Map<string, number>();
  private readonly bySession = new Map<string, number>();
  private readonly charges = new Map<R, RelayCharge>();

  constructor(
    private readonly maxPerSource: number,
    private readonly maxPerSession: number,
  ) {}

  /** Why `needed` more ports cannot be charged, or null when they can. */
  refusal(charge: RelayCharge, needed: number): 'source_limit' | 'session_limit' | null {
    if ((this.bySource.get(charge.source) ?? 0) + needed > this.maxPerSource) return 'source_limit';
    if ((this.bySession.get(charge.session) ?? 0) + needed > this.maxPerSession) return 'session_limit';
    return null;
  }

  add(relay: R, charge: RelayCharge): void {
    this.charges.set(relay, charge);
    this.bySource.set(charge.source, (this.bySource.get(charge.source) ?? 0) + 1);
    this.bySession.set(charge.session, (this.bySession.get(charge.session) ?? 0) + 1);
  }

  /** The port was freed: its charge, if any, is lifted. */
  release(relay: R): void {
    const charge = this.charges.get(relay);
    if (!charge) return;
    this.charges.delete(relay);
    uncount(this.bySource, charge.source);
    uncount(this.bySession, charge.session);
  }

  chargedTo(source: string): number {
    return this.bySource.get(source) ?? 0;
  }
}

function uncount(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 0) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
