// A cluster's shared state: every store in one Redis, deliveries over its pub/sub, and the
// membership that tells a dead node from a live one.
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import type { Logger } from 'pino';
import type { AddressBook } from '../address-book.js';
import type { Clock } from '../clock.js';
import type { AttachableDelivery, MessageCodec } from '../delivery.js';
import type { SessionRecord, SessionStore } from '../directory.js';
import type { LobbyStore } from '../lobbies/store.js';
import type { RoomStore } from '../room-store.js';
import type { NodeGoneListener, SharedState } from '../shared-state.js';
import { ThrottledLog } from '../throttled-log.js';
import { RedisAddressBook } from './address-book.js';
import { RedisDelivery } from './delivery.js';
import { RedisLobbyStore } from './lobby-store.js';
import { ClusterMembership, type NodeInfo } from './membership.js';
import { RedisRoomStore } from './room-store.js';
import type { RedisClient } from './script.js';
import type { NodeBoard } from '../node-board.js';
import { RedisNodeBoard } from './node-board.js';
import { RedisSessionStore } from './session-store.js';

/** Longest wait between reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 2000;

export interface RedisStateOptions {
  readonly url: string;
  readonly nodeId: string;
  /** Cluster name: keys are `noray:{<name>}:...` (one hash slot, for Redis Cluster too). */
  readonly clusterName: string;
  /** Where other nodes reach this one. */
  readonly nodeAddress: string;
  /** What other nodes learn about this one. */
  readonly info: NodeInfo;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class RedisState implements SharedState {
  readonly clustered = true;
  readonly nodeId: string;
  readonly nodeAddress: string;
  readonly membership: ClusterMembership;
  private readonly client: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly prefix: string;
  private readonly deliveries: RedisDelivery<unknown>[] = [];
  private readonly log: Logger;
  /** Redis errors are logged once a minute (a Redis that is down fails every command). */
  private readonly errors = new ThrottledLog();
  private board: RedisNodeBoard | null = null;

  constructor(private readonly options: RedisStateOptions) {
    this.nodeId = options.nodeId;
    this.nodeAddress = options.nodeAddress;
    this.prefix = `noray:{${options.clusterName}}:`;
    this.log = options.logger.child({ redis: true, node: options.nodeId });
    const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), MAX_RECONNECT_DELAY_MS);
    // No offline queue: while Redis is unreachable a store call fails at once, and the front
    // answers with its protocol's error instead of a request hanging until Redis is back.
    this.client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy, connectTimeout: 5000 },
    }) as RedisClient;
    this.subscriber = this.client.duplicate() as RedisClient;
    for (const client of [this.client, this.subscriber]) client.on('error', (error: Error) => this.error(error));
    this.membership = new ClusterMembership({
      client: this.client,
      prefix: this.prefix,
      nodeId: options.nodeId,
      info: options.info,
      heartbeatMs: options.heartbeatMs,
      ttlMs: options.ttlMs,
      clock: options.clock,
      logger: this.log,
    });
  }

  newConnectionId(): string {
    return `${this.nodeId}/${randomUUID()}`;
  }

  sessions<S extends SessionRecord>(space: string): SessionStore<S> {
    return this.republished(new RedisSessionStore<S>(this.client, this.keys(space), { nodeId: this.nodeId }));
  }

  addressBook(space: string): AddressBook {
    return this.republished(new RedisAddressBook(this.client, this.keys(space), { nodeId: this.nodeId }));
  }

  rooms(space: string): RoomStore {
    return this.republished(new RedisRoomStore(this.client, this.keys(space), { nodeId: this.nodeId }));
  }

  lobbies(space: string): LobbyStore {
    return new RedisLobbyStore(this.client, this.keys(space), { nodeId: this.nodeId });
  }

  nodeBoard(): NodeBoard {
    // A node's figures live three heartbeats: long enough to survive a slow post, short enough to vanish with the node.
    this.board ??= new RedisNodeBoard(this.client, this.prefix, () => this.membership.nodes().keys(), 3 * this.options.heartbeatMs);
    return this.board;
  }

  delivery<M>(space: string, codec: MessageCodec<M>): AttachableDelivery<M> {
    const delivery = new RedisDelivery<M>({
      publisher: this.client,
      subscriber: this.subscriber,
      prefix: this.prefix,
      space,
      nodeId: this.nodeId,
      codec,
      nodeAlive: (node) => this.membership.mayBeAlive(node),
      onError: (error) => this.error(error),
    });
    this.deliveries.push(delivery as RedisDelivery<unknown>);
    return delivery;
  }

  onNodeGone(listener: NodeGoneListener): void {
    this.membership.onNodeDead(listener);
  }

  /** Connects, joins the cluster (refused while a live node has this id) and subscribes every delivery. */
  async start(): Promise<void> {
    await Promise.all([this.client.connect(), this.subscriber.connect()]);
    await this.membership.start();
    await Promise.all(this.deliveries.map((delivery) => delivery.start()));
    this.log.info({ cluster: this.options.clusterName }, 'joined the cluster');
  }

  /** Leaves the cluster cleanly (no purge by others: the fronts removed their state as they stopped). */
  async stop(): Promise<void> {
    await Promise.allSettled(this.deliveries.map((delivery) => delivery.stop()));
    await this.membership.stop().catch((error: unknown) => this.error(error as Error));
    await Promise.allSettled([this.client.close(), this.subscriber.close()]);
  }

  private error(error: Error): void {
    this.errors.report((suppressed) => this.log.warn({ err: error.message, suppressed }, 'redis error (retrying by itself)'));
  }

  /** A store whose records of this node are put back when Redis comes back empty (the node rejoins). */
  private republished<T extends { republish(): Promise<number> }>(store: T): T {
    this.membership.onRejoined(async () => {
      const restored = await store.republish();
      if (restored > 0) this.log.info({ restored }, 'put this node\'s state back into Redis');
    });
    return store;
  }

  private keys(space: string): string {
    return `${this.prefix}${space}:`;
  }
}
