// Who is alive in a cluster of noray processes sharing one Redis, and what happens when one dies.
//
// Keys (all under the cluster's prefix, e.g. `noray:{c}:`):
//   node:<id>   the node's info as JSON, with a TTL (ttlMs) its heartbeat keeps refreshing
//   nodes       the set of node ids that joined and did not leave
//   purge:<id>  a lock: the one node that runs the purge of <id>'s records
//
// A node listed in `nodes` whose key is gone died (stopped heartbeating for ttlMs): every sweep of
// every survivor sees that, they race for the purge lock (SET NX), and the winner runs the
// onNodeDead listeners (removing the dead node's records from the stores), then unlists it. So
// exactly one survivor purges a dead node; one that dies mid-purge leaves the lock to expire
// (30 s) and another survivor redoes the purge (listeners must be idempotent).
//
// A clean stop() is not a death: the node deletes its key and unlists itself in one MULTI.
//
// A node whose own key expired while it was running (a long pause, a Redis restart, someone's DEL)
// may have been presumed dead and purged: its heartbeat notices, logs a warning, re-creates the key,
// lists itself again and calls the onRejoined listeners (which re-register what it holds).
//
// Tests simulate a crash (SIGKILL) with abandon(): the timers stop and nothing is cleaned up.
import type { Logger } from 'pino';
import { ThrottledLog } from '../throttled-log.js';
import type { Clock, Timer } from '../clock.js';
import { NODE_ID_PATTERN } from './delivery.js';
import { asNumber, asString, asStrings, LuaScript, type RedisClient } from './script.js';

/** What other nodes know about a node (e.g. its addresses). */
export type NodeInfo = Readonly<Record<string, string | number>>;

export interface ClusterMembershipOptions {
  readonly client: RedisClient;
  /** Key prefix of the cluster, e.g. `noray:{c}:`. */
  readonly prefix: string;
  readonly nodeId: string;
  /** What other nodes need to know about this one (JSON-encoded into its key). */
  readonly info: NodeInfo;
  /** How often this node refreshes its key. Default 2000. */
  readonly heartbeatMs?: number;
  /** How long its key lives without a refresh: a node silent this long is dead. Default 6000. */
  readonly ttlMs?: number;
  /** How often the live nodes are read and dead ones purged. Default heartbeatMs. */
  readonly sweepMs?: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

export type NodeDeadListener = (nodeId: string) => Promise<void> | void;
export type RejoinedListener = () => Promise<void> | void;

const PURGE_LOCK_MS = 30_000;

// KEYS[1] node key, KEYS[2] nodes set; ARGV[1] info JSON, ARGV[2] ttl ms, ARGV[3] node id.
// 1: refreshed. 0: the key was gone (others may have presumed this node dead): re-created.
// -1: the key holds another value: another process runs under this id; left alone.
const HEARTBEAT = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
if current then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 0
`);

// KEYS[1] dead node's key, KEYS[2] nodes set, KEYS[3] purge lock; ARGV[1] dead id, ARGV[2] self,
// ARGV[3] lock ttl ms. 1: the caller purges. Checked here, not only by the sweep that saw it dead:
// a sweep that read the set before another node's purge finished must not win the released lock
// and purge again, and a node that came back since is not dead.
const CLAIM = new LuaScript(`
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
`);

// KEYS[1] dead node's key, KEYS[2] nodes set, KEYS[3] purge lock; ARGV[1] dead id, ARGV[2] self.
// Unlists the node unless it came back meanwhile, and releases the lock if still ours.
const PURGED = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
return 1
`);

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

function parseInfo(json: string): NodeInfo {
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
    const out: Record<string, string | number> = {};
    for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
      if (typeof field === 'string' || typeof field === 'number') out[key] = field;
    }
    return out;
  } catch {
    return {};
  }
}

/** Failures of one kind, logged at most once a minute with how many there were, and when they end. */
class ThrottledErrors {
  private readonly log: ThrottledLog;

  constructor(
    private readonly what: string,
    clock: Clock,
    private readonly logger: Logger,
  ) {
    this.log = new ThrottledLog(() => clock.now());
  }

  failed(error: Error): void {
    this.log.report((skipped) =>
      this.logger.error({ err: error, failures: skipped + 1 }, `cluster membership: ${this.what} failed (${skipped + 1} time(s) since the last report); retrying`),
    );
  }

  succeeded(): void {
    this.log.recovered((skipped) => this.logger.info({ unreportedFailures: skipped }, `cluster membership: ${this.what} works again`));
  }
}

/** One node's view of the cluster: its own liveness (heartbeat) and everyone else's (sweep). */
export class ClusterMembership {
  readonly nodeId: string;
  private readonly prefix: string;
  private readonly client: RedisClient;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private readonly sweepMs: number;
  private readonly infoJson: string;
  private readonly info: NodeInfo;
  private readonly nodeKey: string;
  private readonly nodesKey: string;
  private live = new Map<string, NodeInfo>();
  /** Every other node a sweep found alive (a few per cluster and restart): one gone since is dead. */
  private readonly seen = new Set<string>();
  private readonly deadListeners = new Set<NodeDeadListener>();
  private readonly rejoinedListeners = new Set<RejoinedListener>();
  private readonly purging = new Map<string, Promise<void>>();
  private timers: Timer[] = [];
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private heartbeatSince: number | null = null;
  private sweepSince: number | null = null;
  private readonly heartbeatErrors: ThrottledErrors;
  private readonly sweepErrors: ThrottledErrors;
  private takenWarned = false;

  constructor(options: ClusterMembershipOptions) {
    if (!NODE_ID_PATTERN.test(options.nodeId)) {
      throw new Error(`ClusterMembership: node id ${JSON.stringify(options.nodeId)} does not match ${NODE_ID_PATTERN}`);
    }
    this.nodeId = options.nodeId;
    this.client = options.client;
    this.logger = options.logger;
    this.clock = options.clock;
    this.heartbeatMs = options.heartbeatMs ?? 2_000;
    this.ttlMs = options.ttlMs ?? 6_000;
    this.sweepMs = options.sweepMs ?? this.heartbeatMs;
    if (!(this.heartbeatMs > 0 && this.ttlMs > this.heartbeatMs && this.sweepMs > 0)) {
      throw new Error(`ClusterMembership: need 0 < heartbeatMs (${this.heartbeatMs}) < ttlMs (${this.ttlMs}) and sweepMs (${this.sweepMs}) > 0`);
    }
    this.info = { ...options.info };
    this.infoJson = JSON.stringify(this.info);
    this.nodeKey = `${options.prefix}node:${options.nodeId}`;
    this.nodesKey = `${options.prefix}nodes`;
    this.prefix = options.prefix;
    this.heartbeatErrors = new ThrottledErrors('heartbeat', this.clock, this.logger);
    this.sweepErrors = new ThrottledErrors('sweep', this.clock, this.logger);
  }

  /**
   * Joins: claims this node's key (rejects if a live node has this id), lists itself, reads the
   * live nodes once, then heartbeats and sweeps on the clock.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`ClusterMembership ${this.nodeId}: start() called twice`);
    this.state = 'starting';
    let claimed: string | null;
    try {
      claimed = await this.client.set(this.nodeKey, this.infoJson, { condition: 'NX', expiration: { type: 'PX', value: this.ttlMs } });
    } catch (error) {
      this.state = 'new';
      throw error;
    }
    if (claimed === null) {
      this.state = 'new';
      throw new Error(
        `ClusterMembership: a live node already runs as ${JSON.stringify(this.nodeId)} (key ${this.nodeKey} exists); give each process its own node id, or wait ${this.ttlMs} ms after a crash`,
      );
    }
    try {
      await this.client.sAdd(this.nodesKey, this.nodeId);
    } catch (error) {
      this.state = 'new';
      await this.client.del(this.nodeKey).catch(() => undefined); // else a retry is refused until the ttl
      throw error;
    }
    this.state = 'running';
    this.live.set(this.nodeId, this.info);
    await this.sweep();
    if (this.state !== 'running') return;
    this.timers.push(this.clock.setInterval(() => void this.heartbeat(), this.heartbeatMs));
    this.timers.push(this.clock.setInterval(() => void this.sweep(), this.sweepMs));
  }

  /** Leaves cleanly: stops the timers, waits for purges it runs, deletes its key and unlists itself. */
  async stop(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.abandon();
    await Promise.allSettled([...this.purging.values()]);
    if (!wasRunning) return;
    await this.client.multi().del(this.nodeKey).sRem(this.nodesKey, this.nodeId).exec();
  }

  /** Stops the timers and nothing else, as a crash would (tests: what SIGKILL leaves behind). */
  abandon(): void {
    for (const timer of this.timers) timer.cancel();
    this.timers = [];
    this.state = 'stopped';
  }

  /** Live nodes and their info, as of the last sweep (this node included). */
  nodes(): ReadonlyMap<string, NodeInfo> {
    return this.live;
  }

  /** Whether `nodeId` was alive at the last sweep; this node always is. Kept while Redis is unreachable. */
  isAlive(nodeId: string): boolean {
    return nodeId === this.nodeId || this.live.has(nodeId);
  }

  /**
   * Whether `nodeId` is not known dead: alive at the last sweep, or never seen by a sweep (a node
   * that joined since). What a delivery asks before publishing to a node.
   */
  mayBeAlive(nodeId: string): boolean {
    return this.isAlive(nodeId) || !this.seen.has(nodeId);
  }

  /** Called (by exactly one survivor) for each node that died; awaited before the node is unlisted. */
  onNodeDead(listener: NodeDeadListener): () => void {
    this.deadListeners.add(listener);
    return () => void this.deadListeners.delete(listener);
  }

  /** Called when this node found its key expired (others may have purged it) and re-created it. */
  onRejoined(listener: RejoinedListener): () => void {
    this.rejoinedListeners.add(listener);
    return () => void this.rejoinedListeners.delete(listener);
  }

  private stalled(since: number | null, errors: ThrottledErrors, what: string): boolean {
    if (since === null) return false;
    const waited = this.clock.now() - since;
    if (waited >= this.ttlMs) errors.failed(new Error(`the ${what} has waited ${waited} ms for Redis`));
    return true;
  }

  private async heartbeat(): Promise<void> {
    if (this.state !== 'running' || this.stalled(this.heartbeatSince, this.heartbeatErrors, 'heartbeat')) return;
    this.heartbeatSince = this.clock.now();
    try {
      const result = asNumber(await HEARTBEAT.run(this.client, [this.nodeKey, this.nodesKey], [this.infoJson, String(this.ttlMs), this.nodeId]));
      this.heartbeatErrors.succeeded();
      if (this.state !== 'running') return;
      if (result === 1) {
        this.takenWarned = false;
      } else if (result === 0) {
        this.takenWarned = false;
        this.logger.warn({ nodeId: this.nodeId }, 'cluster membership: this node\'s key had expired (other nodes may have presumed it dead and purged its records); re-created it, rejoining');
        this.live.set(this.nodeId, this.info);
        for (const listener of this.rejoinedListeners) void this.call('onRejoined', () => listener());
      } else if (!this.takenWarned) {
        this.takenWarned = true;
        this.logger.error({ nodeId: this.nodeId }, 'cluster membership: another process holds this node\'s key (same node id with other info); not overwriting it');
      }
    } catch (error) {
      this.heartbeatErrors.failed(asError(error));
    } finally {
      this.heartbeatSince = null;
    }
  }

  private async sweep(): Promise<void> {
    if (this.state !== 'running' || this.stalled(this.sweepSince, this.sweepErrors, 'sweep')) return;
    this.sweepSince = this.clock.now();
    try {
      const ids = asStrings(await this.client.sMembers(this.nodesKey));
      const values = ids.length === 0 ? [] : await this.client.mGet(ids.map((id) => `${this.prefix}node:${id}`));
      this.sweepErrors.succeeded();
      if (this.state !== 'running') return;
      const live = new Map<string, NodeInfo>([[this.nodeId, this.info]]);
      const dead: string[] = [];
      ids.forEach((id, i) => {
        if (id === this.nodeId) return;
        const json = asString(values[i]);
        if (json === undefined) dead.push(id);
        else {
          live.set(id, parseInfo(json));
          this.seen.add(id);
        }
      });
      this.live = live;
      for (const id of dead) if (!this.purging.has(id)) await this.tryPurge(id);
    } catch (error) {
      this.sweepErrors.failed(asError(error));
    } finally {
      this.sweepSince = null;
    }
  }

  /** Takes the purge lock of a dead node; the winner runs the purge in the background. */
  private async tryPurge(id: string): Promise<void> {
    const lock = `${this.prefix}purge:${id}`;
    const claim = [`${this.prefix}node:${id}`, this.nodesKey, lock];
    const won = asNumber(await CLAIM.run(this.client, claim, [id, this.nodeId, String(PURGE_LOCK_MS)]));
    if (won !== 1) return;
    const purge = this.purge(id, lock).finally(() => this.purging.delete(id));
    this.purging.set(id, purge);
  }

  private async purge(id: string, lock: string): Promise<void> {
    this.logger.warn({ deadNode: id }, 'cluster membership: a node stopped heartbeating; purging its records');
    for (const listener of this.deadListeners) await this.call('onNodeDead', () => listener(id));
    try {
      await PURGED.run(this.client, [`${this.prefix}node:${id}`, this.nodesKey, lock], [id, this.nodeId]);
    } catch (error) {
      // The lock expires by itself; the next winner purges again.
      this.sweepErrors.failed(asError(error));
    }
  }

  private async call(what: string, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (error) {
      this.logger.error({ err: asError(error) }, `cluster membership: an ${what} listener failed`);
    }
  }
}
