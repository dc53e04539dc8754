// Where the fronts keep the state other processes may need: this process's memory (one node),
// or a store every node of a cluster shares (Redis). Fronts ask this for their stores and
// deliveries by a space name (their own), so two fronts never share keys.
import { randomBytes, randomUUID } from 'node:crypto';
import { MemoryAddressBook, type AddressBook } from './address-book.js';
import { LocalDelivery, type AttachableDelivery, type MessageCodec } from './delivery.js';
import { MemorySessionStore, type SessionRecord, type SessionStore } from './directory.js';
import { MemoryLobbyStore, type LobbyStore } from './lobbies/store.js';
import { MemoryNodeBoard, type NodeBoard } from './node-board.js';
import { MemoryRoomStore, type RoomStore } from './room-store.js';

/** A node id: letters, digits, '_' and '-', so that it can prefix connection ids and keys. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** NORAY_NODE_ID when unset: random per start. */
export function randomNodeId(): string {
  return `node-${randomBytes(4).toString('hex')}`;
}

/** The node part of a connection id (`<nodeId>/<uuid>`), or undefined when it has none. */
export function nodeOf(connection: string): string | undefined {
  const slash = connection.indexOf('/');
  if (slash <= 0) return undefined;
  const node = connection.slice(0, slash);
  return NODE_ID_PATTERN.test(node) ? node : undefined;
}

/** What a dead node left behind, per front: each front tells its own peers, as on a disconnect. */
export type NodeGoneListener = (nodeId: string) => Promise<void> | void;

export interface SharedState {
  /** This process's id in the cluster ('local' when alone). */
  readonly nodeId: string;
  /** Whether other processes share this state (then stores answer with promises, always). */
  readonly clustered: boolean;
  /** Where other nodes reach this one (its relay ports); null alone. */
  readonly nodeAddress: string | null;
  /**
   * A connection id unique cluster-wide and never reused: `<nodeId>/<uuid>`, so a delivery to it
   * finds the node the connection lives on without a lookup.
   */
  newConnectionId(): string;
  sessions<S extends SessionRecord>(space: string): SessionStore<S>;
  addressBook(space: string): AddressBook;
  rooms(space: string): RoomStore;
  lobbies(space: string): LobbyStore;
  delivery<M>(space: string, codec: MessageCodec<M>): AttachableDelivery<M>;
  /** Where nodes post their dashboard figures (one board per state). */
  nodeBoard(): NodeBoard;
  /**
   * Runs `listener` when another node died (its heartbeat expired): on exactly one surviving node,
   * after which nothing of the dead node may be left. Never called for a single process.
   */
  onNodeGone(listener: NodeGoneListener): void;
  /** Connects (a cluster: joins it); before any front starts. */
  start(): Promise<void>;
  /** Disconnects (a cluster: leaves it cleanly); after every front stopped. */
  stop(): Promise<void>;
}

/** One process: every store in memory, every delivery local, no other node ever. */
export class LocalState implements SharedState {
  readonly nodeId = 'local';
  readonly clustered = false;
  readonly nodeAddress = null;

  newConnectionId(): string {
    return `${this.nodeId}/${randomUUID()}`;
  }

  sessions<S extends SessionRecord>(): SessionStore<S> {
    return new MemorySessionStore<S>();
  }

  addressBook(): AddressBook {
    return new MemoryAddressBook();
  }

  rooms(): RoomStore {
    return new MemoryRoomStore();
  }

  lobbies(): LobbyStore {
    return new MemoryLobbyStore();
  }

  delivery<M>(): AttachableDelivery<M> {
    return new LocalDelivery<M>();
  }

  private readonly board = new MemoryNodeBoard();

  nodeBoard(): NodeBoard {
    return this.board;
  }

  onNodeGone(): void {
    // Alone: no other node can die.
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}
}
