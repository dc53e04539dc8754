import type { Endpoint } from '../endpoint.js';
import type { RelaySlot } from './port-pool.js';

/** Why a datagram was not forwarded. Indexes into the engine's drop counters. */
export const DROP_REASONS = [
  'unallocated',
  'no_permission',
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
/** Returned by admit() when the datagram may pass. */
export const ADMIT = -1;

export interface RelayLimits {
  /** Bytes one relay may send per traffic slice. */
  readonly bytesPerSlice: number;
  readonly sliceMs: number;
  readonly maxLifetimeMs: number;
  readonly maxLifetimeBytes: number;
}

/** Bytes per slice from a bytes-per-second limit. */
export function bytesPerSlice(bytesPerSecond: number, sliceMs: number): number {
  return Math.floor((bytesPerSecond * sliceMs) / 1000);
}

/**
 * One endpoint's relay: the port the server uses to talk to it, the peers allowed to reach
 * it (permissions, keyed port then address so lookups allocate nothing), and its traffic state.
 */
export class Relay {
  /** Source endpoint (port, then address as the socket reports it) -> that peer's relay. */
  readonly permissions = new Map<number, Map<string, Relay>>();
  lastActive: number;
  totalBytes = 0;
  private sliceEnd = 0;
  private sliceBytes = 0;

  constructor(
    /** The endpoint this relay belongs to, with the address in the socket's own form. */
    readonly endpoint: Endpoint,
    readonly slot: RelaySlot,
    readonly createdAt: number,
  ) {
    this.lastActive = createdAt;
  }

  get port(): number {
    return this.slot.port;
  }

  /** Counts a datagram this relay's endpoint sends through the server; returns ADMIT or a DROP index. */
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
    this.lastActive = now;
    return ADMIT;
  }

  permit(peer: Relay): void {
    let byAddress = this.permissions.get(peer.endpoint.port);
    if (!byAddress) {
      byAddress = new Map();
      this.permissions.set(peer.endpoint.port, byAddress);
    }
    byAddress.set(peer.endpoint.address, peer);
  }

  revoke(peer: Relay): void {
    const byAddress = this.permissions.get(peer.endpoint.port);
    if (byAddress?.get(peer.endpoint.address) !== peer) return;
    byAddress.delete(peer.endpoint.address);
    if (byAddress.size === 0) this.permissions.delete(peer.endpoint.port);
  }

  peers(): Relay[] {
    const peers: Relay[] = [];
    for (const byAddress of this.permissions.values()) peers.push(...byAddress.values());
    return peers;
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
