import type { RemoteInfo } from 'node:dgram';
import type { Clock, Timer } from '../clock.js';
import type { Endpoint } from '../endpoint.js';
import { laneForNewSource, shareableRelay, type MappingRules } from './mapping.js';
import { PortPool, type BindFailure, type RelaySlot } from './port-pool.js';
import {
  ADMIT,
  bytesPerSlice,
  DROP,
  DROP_REASONS,
  EndpointMap,
  GlobalTraffic,
  Lane,
  NEVER_HEARD,
  Player,
  Relay,
  RelayCharges,
  type DropReason,
  type RelayCharge,
  type RelayLimits,
} from './relay.js';

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
  /** A learned NAT mapping silent for this long may be replaced by a new source (see mapping.ts). */
  readonly relearnAfterMs: number;
  /** Most relay ports charged to one source (IPv4 address, IPv6 /64) at once, until they expire. */
  readonly maxPerSource: number;
  /** Most relay ports charged to one session at once. */
  readonly maxPerSession: number;
}

export type { RelayCharge } from './relay.js';

export type IntroduceResult =
  | { readonly ok: true; readonly portA: number; readonly portB: number }
  | { readonly ok: false; readonly reason: 'no_free_port' | 'same_endpoint' | 'source_limit' | 'session_limit' };

export interface RelayEngineStats {
  relays: number;
  boundPorts: number;
  freePorts: number;
  packets: number;
  bytes: number;
  expired: number;
  /** Sources learned on relay ports for players whose NAT maps them elsewhere than the registrar saw. */
  learned: number;
  /** Of those, learned again after the earlier mapping went silent (NAT rebinding). */
  relearned: number;
  drops: Record<DropReason, number>;
}

/**
 * What the noray front, the registrar and the cluster bridge use of a relay engine. Two engines
 * have it: this one (the reference, every datagram through Node's dgram) and the native one
 * (native-engine.ts, the data path in a Node addon); select.ts picks one.
 */
export interface RelayEngine {
  /** Binds every relay port and starts the idle sweep; returns the ports that could not be bound. */
  start(): Promise<readonly BindFailure[]>;
  stop(): Promise<void>;
  introduce(a: Endpoint, b: Endpoint, charge?: RelayCharge): IntroduceResult;
  move(from: Endpoint, to: Endpoint): boolean;
  relayPortOf(endpoint: Endpoint): number | undefined;
  sweep(): number;
  readonly stats: RelayEngineStats;
  readonly boundPorts: number[];
  chargedTo(source: string): number;
  /** For each registered endpoint: the relay ports it is reached on and the bytes relayed to it through them (the dashboard's hosts). */
  usage(endpoints: readonly Endpoint[]): Array<RelayUsage | undefined>;
}

export interface RelayUsage {
  readonly relays: number;
  readonly bytes: number;
}

/**
 * UDP relay: every player taking part gets a relay port; a datagram from S arriving on T's relay
 * port is sent to T from S's relay port, so each side only ever sees the server. Forwarding happens
 * only between players introduced to each other (like TURN permissions), and each player is
 * answered where it is heard on that port, so players behind symmetric NATs work (mapping.ts).
 */
export class UdpRelayEngine implements RelayEngine {
  private readonly pool: PortPool;
  /** Registered endpoint (socket form) -> the player. */
  private readonly players = new EndpointMap<Player>();
  /** Learned source -> the player it belongs to, and on how many lanes. */
  private readonly learnedSources = new EndpointMap<{ readonly player: Player; lanes: number }>();
  private readonly allocated = new Set<Relay>();
  /** Relay ports charged, by source key and by session. */
  private readonly charges: RelayCharges<Relay>;
  private readonly limits: RelayLimits;
  private readonly rules: MappingRules;
  private readonly global: GlobalTraffic;
  private readonly clock: Clock;
  private cleanupTimer: Timer | null = null;
  // Plain numbers on the hot path; read by the metrics collector on scrape.
  private packets = 0;
  private bytes = 0;
  private expired = 0;
  private learned = 0;
  private relearned = 0;
  private readonly drops = new Float64Array(DROP_REASONS.length);

  constructor(private readonly options: UdpRelayEngineOptions) {
    this.charges = new RelayCharges(options.maxPerSource, options.maxPerSession);
    this.clock = options.clock;
    this.limits = {
      bytesPerSlice: bytesPerSlice(options.maxIndividualBytesPerSecond, options.trafficIntervalMs),
      sliceMs: options.trafficIntervalMs,
      maxLifetimeMs: options.maxLifetimeMs,
      maxLifetimeBytes: options.maxLifetimeBytes,
    };
    this.rules = { relearnAfterMs: options.relearnAfterMs };
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
    for (const relay of [...this.allocated]) this.free(relay);
    await this.pool.close();
  }

  /** The hot path: one lookup, one limiter check, one send. */
  private forward(slot: RelaySlot, message: Buffer, from: RemoteInfo): void {
    const inbound = slot.relay;
    if (inbound === null) {
      this.drops[DROP.unallocated]! += 1;
      return;
    }
    const now = this.clock.now();
    let lane = inbound.sources.get(from.port, from.address);
    if (lane === undefined) {
      const found = this.learn(inbound, from, now);
      if (typeof found === 'number') {
        this.drops[found]! += 1;
        return;
      }
      lane = found;
    } else if (lane.learned !== null && from.port !== lane.learned.port) {
      // The registered endpoint itself is heard: the registrar vouched for it, so it wins over a
      // source learned before it spoke (which may have been a stranger behind the same IP).
      this.unlearn(lane);
    }
    lane.heardAt = now;
    const size = message.length;
    const verdict = lane.sender.admit(size, now, this.limits);
    if (verdict !== ADMIT) {
      this.drops[verdict]! += 1;
      return;
    }
    if (!this.global.admit(size, now)) {
      this.drops[DROP.global_bandwidth]! += 1;
      return;
    }
    const back = lane.reverse;
    inbound.lastActive = now;
    inbound.bytes += size;
    back.inbound.lastActive = now;
    this.packets++;
    this.bytes += size;
    back.inbound.slot.socket.send(message, back.reach.port, back.reach.address);
  }

  /** A source not seen on this port before: learn it as a peer's NAT mapping if the rule allows. */
  private learn(inbound: Relay, from: RemoteInfo, now: number): Lane | number {
    const source: Endpoint = { address: from.address, port: from.port };
    const found = laneForNewSource(inbound, source, now, this.rules, (candidate) => this.ownerOf(candidate));
    if (typeof found === 'number') return found;
    if (found.learned !== null || found.heardAt !== NEVER_HEARD) this.relearned++;
    this.unlearn(found);
    found.learned = source;
    found.reach = source;
    inbound.sources.set(source, found);
    const entry = this.learnedSources.get(source.port, source.address);
    if (entry) entry.lanes++;
    else this.learnedSources.set(source, { player: found.sender, lanes: 1 });
    this.learned++;
    return found;
  }

  private ownerOf(source: Endpoint): Player | undefined {
    return this.players.get(source.port, source.address) ?? this.learnedSources.get(source.port, source.address)?.player;
  }

  /** Forgets a lane's learned source: it is reached at its registered endpoint again. */
  private unlearn(lane: Lane): void {
    const learned = lane.learned;
    if (learned === null) return;
    lane.inbound.sources.delete(learned, lane);
    const entry = this.learnedSources.get(learned.port, learned.address);
    if (entry && --entry.lanes === 0) this.learnedSources.delete(learned, entry);
    lane.learned = null;
    lane.reach = lane.sender.endpoint;
  }

  /**
   * Lets endpoints a and b reach each other through relays, making relays as needed.
   * Returns the relay port each is reached on (a is told portB, b is told portA).
   */
  introduce(a: Endpoint, b: Endpoint, charge?: RelayCharge): IntroduceResult {
    const keyA = this.socketForm(a);
    const keyB = this.socketForm(b);
    if (keyA.address === keyB.address && keyA.port === keyB.port) return { ok: false, reason: 'same_endpoint' };
    const now = this.clock.now();
    const playerA = this.players.get(keyA.port, keyA.address) ?? new Player(keyA, now);
    const playerB = this.players.get(keyB.port, keyB.address) ?? new Player(keyB, now);
    const existing = playerA.lanes.get(playerB);
    if (existing) return { ok: true, portA: existing.reverse.inbound.port, portB: existing.inbound.port };

    const reuseB = shareableRelay(playerB, playerA);
    const reuseA = shareableRelay(playerA, playerB);
    const needed = (reuseA ? 0 : 1) + (reuseB ? 0 : 1);
    const refusal = charge && needed > 0 ? this.charges.refusal(charge, needed) : null;
    if (refusal !== null) return { ok: false, reason: refusal };
    if (this.pool.freeCount < needed) return { ok: false, reason: 'no_free_port' };
    const relayA = reuseA ?? this.allocate(playerA, now, charge);
    const relayB = reuseB ?? this.allocate(playerB, now, charge);
    const toB = new Lane(playerA, relayB);
    const toA = new Lane(playerB, relayA);
    toB.reverse = toA;
    toA.reverse = toB;
    this.addLane(toB);
    this.addLane(toA);
    return { ok: true, portA: relayA.port, portB: relayB.port };
  }

  /**
   * A player re-registered from a new endpoint (through the registrar, so it proved its
   * PrivateID): its relays follow it, keeping their ports, and its learned mappings start over.
   * Refused (false) when another player is registered at the new endpoint.
   */
  move(from: Endpoint, to: Endpoint): boolean {
    const keyFrom = this.socketForm(from);
    const keyTo = this.socketForm(to);
    const player = this.players.get(keyFrom.port, keyFrom.address);
    if (!player) return false;
    if (this.players.get(keyTo.port, keyTo.address)) return false;
    this.players.delete(keyFrom, player);
    player.endpoint = keyTo;
    this.players.set(keyTo, player);
    for (const lane of player.lanes.values()) {
      this.unlearn(lane);
      lane.inbound.sources.delete(keyFrom, lane);
      lane.reach = keyTo;
      lane.heardAt = NEVER_HEARD;
      lane.inbound.sources.set(keyTo, lane);
    }
    return true;
  }

  /** The relay port an endpoint is reached on by new peers, if it has one. */
  relayPortOf(endpoint: Endpoint): number | undefined {
    const key = this.socketForm(endpoint);
    return this.players.get(key.port, key.address)?.relays[0]?.port;
  }

  /** Frees relays idle for longer than the timeout; returns how many. */
  sweep(): number {
    const now = this.clock.now();
    let count = 0;
    for (const relay of [...this.allocated]) {
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
      relays: this.allocated.size,
      boundPorts: this.pool.size,
      freePorts: this.pool.freeCount,
      packets: this.packets,
      bytes: this.bytes,
      expired: this.expired,
      learned: this.learned,
      relearned: this.relearned,
      drops,
    };
  }

  get boundPorts(): number[] {
    return this.pool.boundPorts;
  }

  usage(endpoints: readonly Endpoint[]): Array<RelayUsage | undefined> {
    return endpoints.map((endpoint) => {
      const key = this.socketForm(endpoint);
      const player = this.players.get(key.port, key.address);
      if (!player) return undefined;
      let bytes = 0;
      for (const relay of player.relays) bytes += relay.bytes;
      return { relays: player.relays.length, bytes };
    });
  }

  /** Relay ports charged to a source key now (for tests and /health). */
  chargedTo(source: string): number {
    return this.charges.chargedTo(source);
  }

  private allocate(owner: Player, now: number, charge: RelayCharge | undefined): Relay {
    const slot = this.pool.acquire();
    if (!slot) throw new Error('relay port pool empty after a free-count check');
    const relay = new Relay(owner, slot, now);
    if (charge) this.charges.add(relay, charge);
    slot.relay = relay;
    if (owner.relays.length === 0) this.players.set(owner.endpoint, owner);
    owner.relays.push(relay);
    this.allocated.add(relay);
    return relay;
  }

  private addLane(lane: Lane): void {
    lane.inbound.lanes.push(lane);
    lane.inbound.sources.set(lane.sender.endpoint, lane);
    lane.sender.lanes.set(lane.receiver, lane);
  }

  private removeLane(lane: Lane): void {
    this.unlearn(lane);
    const lanes = lane.inbound.lanes;
    const index = lanes.indexOf(lane);
    if (index >= 0) lanes.splice(index, 1);
    lane.inbound.sources.delete(lane.sender.endpoint, lane);
    if (lane.sender.lanes.get(lane.receiver) === lane) lane.sender.lanes.delete(lane.receiver);
  }

  /** Frees a relay port and both directions of every pair that used it. */
  private free(relay: Relay): void {
    if (!this.allocated.delete(relay)) return;
    for (const lane of [...relay.lanes]) {
      this.removeLane(lane);
      this.removeLane(lane.reverse);
    }
    const owner = relay.owner;
    const index = owner.relays.indexOf(relay);
    if (index >= 0) owner.relays.splice(index, 1);
    if (owner.relays.length === 0) this.players.delete(owner.endpoint, owner);
    this.charges.release(relay);
    this.pool.release(relay.slot);
  }

  /** Addresses as the relay sockets report them: IPv4 is `::ffff:`-mapped on an IPv6 socket. */
  private socketForm(endpoint: Endpoint): Endpoint {
    if (this.pool.family === 'udp6' && /^\d+\.\d+\.\d+\.\d+$/.test(endpoint.address)) {
      return { address: `::ffff:${endpoint.address}`, port: endpoint.port };
    }
    return { address: endpoint.address, port: endpoint.port };
  }
}
