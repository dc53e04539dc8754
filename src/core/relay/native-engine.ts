import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { Endpoint } from '../endpoint.js';
import { countOpenFiles, descriptorReserve, isDescriptorExhaustion } from '../open-files.js';
import type { IntroduceResult, RelayCharge, RelayEngine, RelayEngineStats, RelayUsage, UdpRelayEngineOptions } from './engine.js';
import { laneForNewSource, shareableRelay, type MappingRules } from './mapping.js';
import { RELAY_COUNTERS_STRIDE, type NativeRelayBinding, type NativeRelayConstructor } from './native-addon.js';
import type { BindFailure } from './port-pool.js';
import { bytesPerSlice, DROP, DROP_REASONS, EndpointMap, NEVER_HEARD, RelayCharges, type DropReason } from './relay.js';

/**
 * The relay with its data path in native code (native/relay-engine): the sockets, the forwarding
 * table, the per-player and global bandwidth limits, the lifetime limits, the drop counters and each
 * relay's last activity live in the addon, which forwards without entering JavaScript.
 *
 * This class is the control plane and mirrors UdpRelayEngine (engine.ts) step for step: the same
 * players, relays and lanes, the same allocation, charging, sharing and move rules. What it
 * changes in its tables it installs in the addon. One decision stays here: a datagram from a source
 * the addon does not know (the first from a NAT mapping, a stranger) or a player's registered
 * endpoint heard on a lane that learned another source is handed up, decided by the same
 * laneForNewSource() as the JavaScript engine, and handed back to be forwarded natively.
 */
export class NativeRelayEngine implements RelayEngine {
  private readonly native: NativeRelayBinding;
  private readonly players = new EndpointMap<NativePlayer>();
  private readonly learnedSources = new EndpointMap<{ readonly player: NativePlayer; lanes: number }>();
  private readonly allocated = new Set<NativeRelay>();
  private readonly charges: RelayCharges<NativeRelay>;
  private readonly rules: MappingRules;
  private readonly clock: Clock;
  private readonly family: 'udp4' | 'udp6';
  private cleanupTimer: Timer | null = null;
  /** Bound sockets by the addon's slot index. */
  private readonly slots: Array<NativeSlot | undefined> = [];
  private readonly free: NativeSlot[] = [];
  private readonly failures: BindFailure[] = [];
  private readonly playerIds = new IdPool();
  private readonly laneIds = new IdPool();
  private expired = 0;
  private learned = 0;
  private relearned = 0;
  /** Drops decided here, on handed-up datagrams; added to the addon's. */
  private readonly drops = new Float64Array(DROP_REASONS.length);
  private closed: Promise<void> | null = null;
  /** The addon's counters as they were at stop, so stats read after it keep their totals. */
  private finalCounters: Float64Array | null = null;

  constructor(
    NativeRelay: NativeRelayConstructor,
    private readonly options: UdpRelayEngineOptions,
  ) {
    this.charges = new RelayCharges(options.maxPerSource, options.maxPerSession);
    this.clock = options.clock;
    this.rules = { relearnAfterMs: options.relearnAfterMs };
    this.family = options.host.includes(':') ? 'udp6' : 'udp4';
    this.native = new NativeRelay({
      family: this.family === 'udp6' ? 6 : 4,
      socketBufferBytes: options.socketBufferBytes,
      bytesPerSlice: bytesPerSlice(options.maxIndividualBytesPerSecond, options.trafficIntervalMs),
      sliceMs: options.trafficIntervalMs,
      maxLifetimeMs: options.maxLifetimeMs,
      maxLifetimeBytes: options.maxLifetimeBytes,
      globalBytesPerSlice: bytesPerSlice(options.maxGlobalBytesPerSecond, options.trafficIntervalMs),
      onUnknown: (slot, address, port, data) => this.handUp(slot, address, port, data),
      // The wall clock is read natively; any other clock (a test's) is asked once per wake-up.
      ...(options.clock === systemClock ? {} : { now: () => this.clock.now() }),
    });
  }

  async start(): Promise<readonly BindFailure[]> {
    const address = isIP(this.options.host) ? this.options.host : (await lookup(this.options.host, { family: this.family === 'udp6' ? 6 : 4 })).address;
    const bound: NativeSlot[] = [];
    for (const port of this.options.ports) {
      const result = this.native.bind(address, port);
      if ('slot' in result) {
        const slot: NativeSlot = { index: result.slot, port: result.port, relay: null };
        this.slots[slot.index] = slot;
        bound.push(slot);
        continue;
      }
      this.failures.push({ port, error: result.error, code: result.code });
      if (isDescriptorExhaustion({ code: result.code })) {
        // As PortPool.bind: keep a reserve of descriptors for the other listeners (open-files.ts).
        const limit = countOpenFiles() ?? bound.length;
        const count = Math.min(bound.length, descriptorReserve(limit));
        bound.sort((a, b) => a.port - b.port);
        for (const slot of bound.splice(bound.length - count, count)) {
          this.native.closeSlot(slot.index);
          this.slots[slot.index] = undefined;
        }
        break;
      }
    }
    this.free.push(...[...bound].sort((a, b) => b.port - a.port));
    this.cleanupTimer = this.clock.setInterval(() => this.sweep(), this.options.cleanupIntervalMs);
    return this.failures;
  }

  async stop(): Promise<void> {
    this.cleanupTimer?.cancel();
    this.cleanupTimer = null;
    for (const relay of [...this.allocated]) this.free_(relay);
    this.finalCounters ??= this.native.counters();
    this.closed ??= new Promise<void>((resolve) => this.native.close(resolve));
    this.slots.length = 0;
    this.free.length = 0;
    await this.closed;
  }

  /** A datagram the addon could not place: the rare path, the learning rule of mapping.ts. */
  private handUp(slotIndex: number, address: string, port: number, data: Buffer): void {
    const inbound = this.slots[slotIndex]?.relay;
    if (!inbound) {
      this.drops[DROP.unallocated]! += 1;
      return;
    }
    const now = this.clock.now();
    let lane = inbound.sources.get(port, address);
    if (lane === undefined) {
      const found = this.learn(inbound, { address, port }, now);
      if (typeof found === 'number') {
        this.drops[found]! += 1;
        return;
      }
      lane = found;
    } else if (lane.learned !== null && port !== lane.learned.port) {
      this.unlearn(lane);
    }
    this.native.forwardVia(lane.id, data, now);
  }

  private learn(inbound: NativeRelay, source: Endpoint, now: number): NativeLane | number {
    const found = laneForNewSource(inbound, source, now, this.rules, (candidate) => this.ownerOf(candidate));
    if (typeof found === 'number') return found;
    if (found.learned !== null || found.heardAt !== NEVER_HEARD) this.relearned++;
    this.unlearn(found);
    found.learned = source;
    found.reach = source;
    this.native.setReach(found.id, source.address, source.port, true);
    this.setSource(inbound, source, found, true);
    const entry = this.learnedSources.get(source.port, source.address);
    if (entry) entry.lanes++;
    else this.learnedSources.set(source, { player: found.sender, lanes: 1 });
    this.learned++;
    return found;
  }

  private ownerOf(source: Endpoint): NativePlayer | undefined {
    return this.players.get(source.port, source.address) ?? this.learnedSources.get(source.port, source.address)?.player;
  }

  private unlearn(lane: NativeLane): void {
    const learned = lane.learned;
    if (learned === null) return;
    this.deleteSource(lane.inbound, learned, lane);
    const entry = this.learnedSources.get(learned.port, learned.address);
    if (entry && --entry.lanes === 0) this.learnedSources.delete(learned, entry);
    lane.learned = null;
    lane.reach = lane.sender.endpoint;
    this.native.setReach(lane.id, lane.reach.address, lane.reach.port, false);
  }

  private setSource(relay: NativeRelay, source: Endpoint, lane: NativeLane, learned: boolean): void {
    relay.sources.set(source, lane);
    this.native.setSource(relay.slot.index, source.address, source.port, lane.id, learned);
  }

  /** As EndpointMap.delete: only if the source still leads to `lane`. */
  private deleteSource(relay: NativeRelay, source: Endpoint, lane: NativeLane): void {
    if (relay.sources.get(source.port, source.address) !== lane) return;
    relay.sources.delete(source, lane);
    this.native.deleteSource(relay.slot.index, source.address, source.port);
  }

  introduce(a: Endpoint, b: Endpoint, charge?: RelayCharge): IntroduceResult {
    const keyA = this.socketForm(a);
    const keyB = this.socketForm(b);
    if (keyA.address === keyB.address && keyA.port === keyB.port) return { ok: false, reason: 'same_endpoint' };
    const now = this.clock.now();
    const playerA = this.players.get(keyA.port, keyA.address) ?? new NativePlayer(keyA, now);
    const playerB = this.players.get(keyB.port, keyB.address) ?? new NativePlayer(keyB, now);
    const existing = playerA.lanes.get(playerB);
    if (existing) return { ok: true, portA: existing.reverse.inbound.port, portB: existing.inbound.port };

    const reuseB = shareableRelay(playerB, playerA);
    const reuseA = shareableRelay(playerA, playerB);
    const needed = (reuseA ? 0 : 1) + (reuseB ? 0 : 1);
    const refusal = charge && needed > 0 ? this.charges.refusal(charge, needed) : null;
    if (refusal !== null) return { ok: false, reason: refusal };
    if (this.free.length < needed) return { ok: false, reason: 'no_free_port' };
    const relayA = reuseA ?? this.allocate(playerA, now, charge);
    const relayB = reuseB ?? this.allocate(playerB, now, charge);
    const toB = new NativeLane(this.laneIds.take(), playerA, relayB, (id) => this.native.heardAt(id));
    const toA = new NativeLane(this.laneIds.take(), playerB, relayA, (id) => this.native.heardAt(id));
    toB.reverse = toA;
    toA.reverse = toB;
    for (const lane of [toB, toA]) {
      this.native.setLane(lane.id, lane.inbound.slot.index, lane.sender.id, lane.reverse.id, lane.reach.address, lane.reach.port);
    }
    this.addLane(toB);
    this.addLane(toA);
    return { ok: true, portA: relayA.port, portB: relayB.port };
  }

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
      this.deleteSource(lane.inbound, keyFrom, lane);
      lane.reach = keyTo;
      this.native.setReach(lane.id, keyTo.address, keyTo.port, false);
      this.native.setHeardAt(lane.id, NEVER_HEARD);
      this.setSource(lane.inbound, keyTo, lane, false);
    }
    return true;
  }

  relayPortOf(endpoint: Endpoint): number | undefined {
    const key = this.socketForm(endpoint);
    return this.players.get(key.port, key.address)?.relays[0]?.port;
  }

  /** Frees relays idle for longer than the timeout, from the last activity the addon recorded. */
  sweep(): number {
    const now = this.clock.now();
    const counters = this.native.relayCounters();
    let count = 0;
    for (const relay of [...this.allocated]) {
      const lastActive = counters[relay.slot.index * RELAY_COUNTERS_STRIDE] ?? now;
      if (now - lastActive >= this.options.idleTimeoutMs) {
        this.free_(relay);
        count++;
      }
    }
    this.expired += count;
    return count;
  }

  get stats(): RelayEngineStats {
    const counters = this.finalCounters ?? this.native.counters();
    const drops = {} as Record<DropReason, number>;
    DROP_REASONS.forEach((reason, index) => (drops[reason] = (counters[2 + index] ?? 0) + (this.drops[index] ?? 0)));
    return {
      relays: this.allocated.size,
      boundPorts: this.slots.filter((slot) => slot !== undefined).length,
      freePorts: this.free.length,
      packets: counters[0] ?? 0,
      bytes: counters[1] ?? 0,
      expired: this.expired,
      learned: this.learned,
      relearned: this.relearned,
      drops,
    };
  }

  get boundPorts(): number[] {
    return this.slots.filter((slot): slot is NativeSlot => slot !== undefined).map((slot) => slot.port);
  }

  chargedTo(source: string): number {
    return this.charges.chargedTo(source);
  }

  usage(endpoints: readonly Endpoint[]): Array<RelayUsage | undefined> {
    // One read of the addon's per-slot counters for all of them: [lastActive, packets, bytes] per slot.
    const counters = endpoints.length > 0 ? this.native.relayCounters() : new Float64Array(0);
    return endpoints.map((endpoint) => {
      const key = this.socketForm(endpoint);
      const player = this.players.get(key.port, key.address);
      if (!player) return undefined;
      let bytes = 0;
      for (const relay of player.relays) bytes += counters[relay.slot.index * RELAY_COUNTERS_STRIDE + 1] || 0;
      return { relays: player.relays.length, bytes };
    });
  }

  private allocate(owner: NativePlayer, now: number, charge: RelayCharge | undefined): NativeRelay {
    const slot = this.free.pop();
    if (!slot) throw new Error('relay port pool empty after a free-count check');
    const relay = new NativeRelay(owner, slot);
    if (charge) this.charges.add(relay, charge);
    slot.relay = relay;
    this.native.setRelay(slot.index, true, now);
    if (owner.relays.length === 0) {
      owner.id = this.playerIds.take();
      this.native.setPlayer(owner.id, owner.createdAt);
      this.players.set(owner.endpoint, owner);
    }
    owner.relays.push(relay);
    this.allocated.add(relay);
    return relay;
  }

  private addLane(lane: NativeLane): void {
    lane.inbound.lanes.push(lane);
    this.setSource(lane.inbound, lane.sender.endpoint, lane, false);
    lane.sender.lanes.set(lane.receiver, lane);
  }

  private removeLane(lane: NativeLane): void {
    if (lane.removed) return;
    this.unlearn(lane);
    const lanes = lane.inbound.lanes;
    const index = lanes.indexOf(lane);
    if (index >= 0) lanes.splice(index, 1);
    this.deleteSource(lane.inbound, lane.sender.endpoint, lane);
    if (lane.sender.lanes.get(lane.receiver) === lane) lane.sender.lanes.delete(lane.receiver);
    lane.removed = true;
    this.native.deleteLane(lane.id);
    this.laneIds.give(lane.id);
  }

  private free_(relay: NativeRelay): void {
    if (!this.allocated.delete(relay)) return;
    for (const lane of [...relay.lanes]) {
      this.removeLane(lane);
      this.removeLane(lane.reverse);
    }
    const owner = relay.owner;
    const index = owner.relays.indexOf(relay);
    if (index >= 0) owner.relays.splice(index, 1);
    if (owner.relays.length === 0) {
      this.players.delete(owner.endpoint, owner);
      this.native.deletePlayer(owner.id);
      this.playerIds.give(owner.id);
    }
    this.charges.release(relay);
    relay.slot.relay = null;
    this.native.setRelay(relay.slot.index, false, this.clock.now());
    this.free.push(relay.slot);
  }

  private socketForm(endpoint: Endpoint): Endpoint {
    if (this.family === 'udp6' && /^\d+\.\d+\.\d+\.\d+$/.test(endpoint.address)) {
      return { address: `::ffff:${endpoint.address}`, port: endpoint.port };
    }
    return { address: endpoint.address, port: endpoint.port };
  }
}

interface NativeSlot {
  readonly index: number;
  readonly port: number;
  relay: NativeRelay | null;
}

/** Player (relay.ts) without the limit state, which is the addon's; `id` names it there. */
class NativePlayer {
  readonly relays: NativeRelay[] = [];
  readonly lanes = new Map<NativePlayer, NativeLane>();
  id = -1;

  constructor(
    public endpoint: Endpoint,
    readonly createdAt: number,
  ) {}
}

/** Relay (relay.ts) without lastActive, which is the addon's. */
class NativeRelay {
  readonly sources = new EndpointMap<NativeLane>();
  readonly lanes: NativeLane[] = [];

  constructor(
    readonly owner: NativePlayer,
    readonly slot: NativeSlot,
  ) {}

  get port(): number {
    return this.slot.port;
  }
}

/** Lane (relay.ts); heardAt is read from the addon, which updates it per datagram. */
class NativeLane {
  reverse!: NativeLane;
  reach: Endpoint;
  learned: Endpoint | null = null;
  removed = false;

  constructor(
    readonly id: number,
    readonly sender: NativePlayer,
    readonly inbound: NativeRelay,
    private readonly readHeardAt: (id: number) => number,
  ) {
    this.reach = sender.endpoint;
  }

  get heardAt(): number {
    return this.readHeardAt(this.id);
  }

  get receiver(): NativePlayer {
    return this.inbound.owner;
  }
}

/** Dense small integers, reused: the addon's tables are arrays indexed by them. */
class IdPool {
  private next = 0;
  private readonly spare: number[] = [];

  take(): number {
    return this.spare.pop() ?? this.next++;
  }

  give(id: number): void {
    this.spare.push(id);
  }
}
