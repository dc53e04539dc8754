import type { RemoteInfo } from 'node:dgram';
import type { Clock, Timer } from '../clock.js';
import type { Endpoint } from '../endpoint.js';
import { PortPool, type BindFailure, type RelaySlot } from './port-pool.js';
import { ADMIT, bytesPerSlice, DROP, DROP_REASONS, GlobalTraffic, Relay, type DropReason, type RelayLimits } from './relay.js';

export interface UdpRelayEngineOptions {
  readonly host: string;
  readonly ports: readonly number[];
  readonly clock: Clock;
  /** A relay without forwarded traffic for this long is freed. */
  readonly idleTimeoutMs: number;
  readonly cleanupIntervalMs: number;
  readonly maxIndividualBytesPerSecond: number;
  readonly maxGlobalBytesPerSecond: number;
  readonly trafficIntervalMs: number;
  readonly maxLifetimeMs: number;
  readonly maxLifetimeBytes: number;
  readonly socketBufferBytes: number;
}

export type IntroduceResult =
  | { readonly ok: true; readonly portA: number; readonly portB: number }
  | { readonly ok: false; readonly reason: 'no_free_port' | 'same_endpoint' };

export interface RelayEngineStats {
  relays: number;
  boundPorts: number;
  freePorts: number;
  packets: number;
  bytes: number;
  expired: number;
  drops: Record<DropReason, number>;
}

/**
 * UDP relay: every endpoint taking part gets a relay port; a datagram from endpoint S arriving on
 * T's relay port is sent to T from S's relay port, so each side only ever sees the server.
 * Forwarding happens only between endpoints introduced to each other (like TURN permissions).
 */
export class UdpRelayEngine {
  private readonly pool: PortPool;
  /** Endpoint (port, then address in the socket's form) -> its relay. */
  private readonly byEndpoint = new Map<number, Map<string, Relay>>();
  private relayCount = 0;
  private readonly limits: RelayLimits;
  private readonly global: GlobalTraffic;
  private readonly clock: Clock;
  private cleanupTimer: Timer | null = null;
  // Plain numbers on the hot path; read by the metrics collector on scrape.
  private packets = 0;
  private bytes = 0;
  private expired = 0;
  private readonly drops = new Float64Array(DROP_REASONS.length);

  constructor(private readonly options: UdpRelayEngineOptions) {
    this.clock = options.clock;
    this.limits = {
      bytesPerSlice: bytesPerSlice(options.maxIndividualBytesPerSecond, options.trafficIntervalMs),
      sliceMs: options.trafficIntervalMs,
      maxLifetimeMs: options.maxLifetimeMs,
      maxLifetimeBytes: options.maxLifetimeBytes,
    };
    this.global = new GlobalTraffic(
      bytesPerSlice(options.maxGlobalBytesPerSecond, options.trafficIntervalMs),
      options.trafficIntervalMs,
    );
    this.pool = new PortPool({
      host: options.host,
      ports: options.ports,
      socketBufferBytes: options.socketBufferBytes,
      onDatagram: (slot, message, from) => this.forward(slot, message, from),
      onSocketError: () => {
        this.drops[DROP.send_error]! += 1;
      },
    });
  }

  /** Binds every relay port and starts the idle sweep; returns the ports that could not be bound. */
  async start(): Promise<readonly BindFailure[]> {
    await this.pool.bind();
    this.cleanupTimer = this.clock.setInterval(() => this.sweep(), this.options.cleanupIntervalMs);
    return this.pool.failures;
  }

  async stop(): Promise<void> {
    this.cleanupTimer?.cancel();
    this.cleanupTimer = null;
    for (const relay of this.relays()) this.free(relay);
    await this.pool.close();
  }

  /** The hot path: one lookup, one limiter check, one send. */
  private forward(slot: RelaySlot, message: Buffer, from: RemoteInfo): void {
    const target = slot.relay;
    if (target === null) {
      this.drops[DROP.unallocated]! += 1;
      return;
    }
    const source = target.permissions.get(from.port)?.get(from.address);
    if (source === undefined) {
      this.drops[DROP.no_permission]! += 1;
      return;
    }
    const size = message.length;
    const now = this.clock.now();
    const verdict = source.admit(size, now, this.limits);
    if (verdict !== ADMIT) {
      this.drops[verdict]! += 1;
      return;
    }
    if (!this.global.admit(size, now)) {
      this.drops[DROP.global_bandwidth]! += 1;
      return;
    }
    target.lastActive = now;
    this.packets++;
    this.bytes += size;
    source.slot.socket.send(message, target.endpoint.port, target.endpoint.address);
  }

  /**
   * Lets endpoints a and b reach each other through their relays, making relays as needed.
   * Returns the relay port of each.
   */
  introduce(a: Endpoint, b: Endpoint): IntroduceResult {
    const keyA = this.socketForm(a);
    const keyB = this.socketForm(b);
    if (keyA.address === keyB.address && keyA.port === keyB.port) return { ok: false, reason: 'same_endpoint' };
    const existingA = this.lookup(keyA);
    const relayA = existingA ?? this.allocate(keyA);
    if (!relayA) return { ok: false, reason: 'no_free_port' };
    const relayB = this.lookup(keyB) ?? this.allocate(keyB);
    if (!relayB) {
      if (!existingA) this.free(relayA);
      return { ok: false, reason: 'no_free_port' };
    }
    relayA.permit(relayB);
    relayB.permit(relayA);
    return { ok: true, portA: relayA.port, portB: relayB.port };
  }

  /** The relay port of an endpoint, if it has one. */
  relayPortOf(endpoint: Endpoint): number | undefined {
    return this.lookup(this.socketForm(endpoint))?.port;
  }

  /** Frees relays idle for longer than the timeout; returns how many. */
  sweep(): number {
    const now = this.clock.now();
    let count = 0;
    for (const relay of this.relays()) {
      if (now - relay.lastActive >= this.options.idleTimeoutMs) {
        this.free(relay);
        count++;
      }
    }
    this.expired += count;
    return count;
  }

  get stats(): RelayEngineStats {
    const drops = {} as Record<DropReason, number>;
    DROP_REASONS.forEach((reason, index) => (drops[reason] = this.drops[index] ?? 0));
    return {
      relays: this.relayCount,
      boundPorts: this.pool.size,
      freePorts: this.pool.freeCount,
      packets: this.packets,
      bytes: this.bytes,
      expired: this.expired,
      drops,
    };
  }

  get boundPorts(): number[] {
    return this.pool.boundPorts;
  }

  private *relays(): Generator<Relay> {
    for (const byAddress of [...this.byEndpoint.values()]) yield* [...byAddress.values()];
  }

  private lookup(endpoint: Endpoint): Relay | undefined {
    return this.byEndpoint.get(endpoint.port)?.get(endpoint.address);
  }

  private allocate(endpoint: Endpoint): Relay | undefined {
    const slot = this.pool.acquire();
    if (!slot) return undefined;
    const relay = new Relay(endpoint, slot, this.clock.now());
    slot.relay = relay;
    let byAddress = this.byEndpoint.get(endpoint.port);
    if (!byAddress) {
      byAddress = new Map();
      this.byEndpoint.set(endpoint.port, byAddress);
    }
    byAddress.set(endpoint.address, relay);
    this.relayCount++;
    return relay;
  }

  private free(relay: Relay): void {
    for (const peer of relay.peers()) peer.revoke(relay);
    relay.permissions.clear();
    const byAddress = this.byEndpoint.get(relay.endpoint.port);
    if (byAddress?.get(relay.endpoint.address) === relay) {
      byAddress.delete(relay.endpoint.address);
      if (byAddress.size === 0) this.byEndpoint.delete(relay.endpoint.port);
      this.relayCount--;
    }
    this.pool.release(relay.slot);
  }

  /** Addresses as the relay sockets report them: IPv4 is `::ffff:`-mapped on an IPv6 socket. */
  private socketForm(endpoint: Endpoint): Endpoint {
    if (this.pool.family === 'udp6' && /^\d+\.\d+\.\d+\.\d+$/.test(endpoint.address)) {
      return { address: `::ffff:${endpoint.address}`, port: endpoint.port };
    }
    return endpoint;
  }
}
