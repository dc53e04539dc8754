// The relay's logic without sockets: decoded frames in, core calls, encoded frames out to peers.
import { randomUUID } from 'node:crypto';
import type { Timer } from '../../core/clock.js';
import { LocalDelivery, type AttachableDelivery, type Inbox } from '../../core/delivery.js';
import { randomToken } from '../../core/ids.js';
import { MemoryRoomStore, type Awaitable, type JoinOptions, type JoinResult, type RoomStore } from '../../core/room-store.js';
import type { Reservations } from '../../core/limits/reservations.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import type { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import { encodeFrame, encodeRelayed, frame, type Frame } from './codec.js';
import type { RelayedType, Rejection, TcpRelayLimitReason, TcpRelayMetrics } from './metrics.js';

/** A connection that has identified itself, as the store and the delivery know it. */
interface Link {
  /** Random, unique for the connection's life (its ids come and go): the identity of its membership. */
  readonly connection: string;
  readonly inbox: Inbox<Buffer>;
}

/** Where one connection stands. Only the router moves a peer from one state to another. */
export type PeerState =
  /** Connected, no INIT has succeeded yet; `deadline` closes the connection unless one does. */
  | { readonly kind: 'login'; readonly deadline: Timer }
  /** Holds `id` in the directory. */
  | { readonly kind: 'member'; readonly id: string; readonly link: Link }
  /** Gave its id back with CLOSE: holds none, but identified itself once, so no deadline any more. */
  | { readonly kind: 'released'; readonly link: Link }
  /** The connection ended; nothing is sent to it and nothing it sent is handled. */
  | { readonly kind: 'gone' };

/** The far end of one connection, as the router sees it. */
export interface RelayPeer {
  state: PeerState;
  /** The source the per-source limits count under (sourceKey of the IP); none in some unit tests. */
  readonly source?: string;
  /**
   * The router's: set while a store call of this peer is pending (never with the memory store),
   * so the peer's next frames wait for it and one sender's frames keep their order.
   */
  pending?: Promise<void> | undefined;
  /** Puts one encoded frame on this peer's connection (the socket side may drop the peer instead). */
  send(encoded: Buffer): void;
}

/** The delivery the router puts frames through; it attaches its identified peers to it. */
export type TcpRelayDelivery = AttachableDelivery<Buffer>;

export interface TcpRelayRouterDeps {
  readonly metrics: Pick<TcpRelayMetrics, 'relayed' | 'rejected'>;
  /** Where the ids are held; a memory store of its own unless given. */
  readonly rooms?: RoomStore;
  /** Local delivery of its own unless given. */
  readonly delivery?: TcpRelayDelivery;
  /** Picks an id for INIT without source; the router retries while the id is taken. */
  readonly newId?: () => string;
  /** Makes connection ids; random UUIDs unless a test picks them. */
  readonly newConnectionId?: () => string;
  /** Ids freed by a disconnect, kept for INITs from the same source for a while; none unless given. */
  readonly reservations?: Reservations;
  /**
   * Answers that tell a guesser something (id taken, destination unknown) per source; over it the
   * answer is withheld. Unlimited unless given.
   */
  readonly guesses?: SourceRateLimiter;
  readonly limits?: LimitSink<TcpRelayLimitReason>;
}

/** Every id is unique across the relay: one flat room with no owner, open for as long as anyone uses it. */
const DIRECTORY = 'tcprelay';
const IN_DIRECTORY: JoinOptions = { uniqueIds: true, openIfAbsent: true };

/** Turns decoded frames into directory calls and answers; every refusal is answered with an ERROR frame. */
export class TcpRelayRouter {
  private readonly rooms: RoomStore;
  private readonly delivery: TcpRelayDelivery;
  private readonly newId: () => string;
  private readonly newConnectionId: () => string;
  private held = 0;

  constructor(private readonly deps: TcpRelayRouterDeps) {
    this.rooms = deps.rooms ?? new MemoryRoomStore();
    this.delivery = deps.delivery ?? new LocalDelivery<Buffer>();
    this.newId = deps.newId ?? randomToken;
    this.newConnectionId = deps.newConnectionId ?? randomUUID;
  }

  /** Ids held by this router's connections. */
  get ids(): number {
    return this.held;
  }

  handle(peer: RelayPeer, received: Frame): void {
    // Only a store that answers with promises makes a peer wait; the closure is made only then.
    if (peer.pending !== undefined) return this.after(peer, () => this.handleNow(peer, received));
    this.track(peer, this.handleNow(peer, received));
  }

  /**
   * The connection ended, for whatever reason: its id is freed at once and its login deadline
   * cancelled. False if it had already ended.
   */
  disconnected(peer: RelayPeer): boolean {
    const state = peer.state;
    if (state.kind === 'gone') return false;
    if (state.kind === 'login') state.deadline.cancel();
    peer.state = { kind: 'gone' };
    if (state.kind === 'member' || state.kind === 'released') this.delivery.detach(state.link.connection, state.link.inbox);
    if (state.kind === 'member') {
      this.held--;
      // Its owner may come back from the same source and INIT the id again; others wait.
      if (peer.source !== undefined) this.deps.reservations?.reserve(state.id, peer.source);
      this.inOrder(peer, () => this.rooms.leave(DIRECTORY, state.link.connection));
    }
    // A peer whose INIT is still pending gives the id back when the answer comes.
    return true;
  }

  private handleNow(peer: RelayPeer, received: Frame): Awaitable<unknown> {
    if (peer.state.kind === 'gone') return;
    switch (received.payloadType) {
      case 'INIT':
        return this.init(peer, received.source);
      case 'CLOSE':
        return this.release(peer);
      case 'MESSAGE':
      case 'ERROR':
        return this.relay(peer, received.payloadType, received);
    }
  }

  private init(peer: RelayPeer, requested: string | undefined): Awaitable<unknown> {
    // An empty source is treated like no source: the relay picks the id.
    const wanted = requested === '' ? undefined : requested;
    const state = peer.state;
    if (state.kind === 'gone') return;
    if (wanted !== undefined && state.kind === 'member' && state.id === wanted) {
      return peer.send(encodeFrame(frame('INIT', undefined, wanted)));
    }
    if (wanted !== undefined && this.deps.reservations?.check(wanted, peer.source) === 'reserved') {
      if (peer.source !== undefined) this.deps.limits?.report('id_reserved', peer.source);
      return this.reject(peer, 'id_taken', wanted, `ClientId: ${wanted} is already initialized`);
    }
    let link: Link;
    if (state.kind === 'login') {
      const inbox: Inbox<Buffer> = (encoded) => peer.send(encoded);
      link = { connection: this.newConnectionId(), inbox };
      this.delivery.attach(link.connection, inbox);
    } else {
      link = state.link;
    }
    return this.claim(peer, link, wanted ?? this.newId(), wanted === undefined);
  }

  /** One join-if-free; a picked id that is taken is replaced by another pick. */
  private claim(peer: RelayPeer, link: Link, id: string, picked: boolean): Awaitable<unknown> {
    // Joining under a new id moves the connection in the same step: the old id is freed only if this one is free.
    const joined = this.rooms.join(DIRECTORY, { connection: link.connection, id }, IN_DIRECTORY);
    if (joined instanceof Promise) return joined.then((result) => this.claimed(peer, link, id, picked, result));
    return this.claimed(peer, link, id, picked, joined);
  }

  private claimed(peer: RelayPeer, link: Link, id: string, picked: boolean, result: JoinResult): Awaitable<unknown> {
    const state = peer.state;
    if (state.kind === 'gone') {
      // Disconnected while the store answered: give the id back.
      this.delivery.detach(link.connection, link.inbox);
      return result === 'joined' ? this.rooms.leave(DIRECTORY, link.connection) : undefined;
    }
    if (result !== 'joined') {
      if (picked && result === 'id-taken') return this.claim(peer, link, this.newId(), true);
      // Still in login (or holding its old id): the connection may try another.
      if (state.kind === 'login') this.delivery.detach(link.connection, link.inbox);
      return this.reject(peer, 'id_taken', id, `ClientId: ${id} is already initialized`);
    }
    if (state.kind !== 'member') this.held++;
    peer.state = { kind: 'member', id, link };
    if (!picked) this.deps.reservations?.release(id);
    if (state.kind === 'login') state.deadline.cancel();
    peer.send(encodeFrame(frame('INIT', undefined, id)));
  }

  /** CLOSE frees the id and keeps the connection; without an id it is ignored. */
  private release(peer: RelayPeer): Awaitable<unknown> {
    const state = peer.state;
    if (state.kind !== 'member') return;
    peer.state = { kind: 'released', link: state.link };
    this.held--;
    return this.rooms.leave(DIRECTORY, state.link.connection);
  }

  private relay(peer: RelayPeer, type: RelayedType, received: Frame): Awaitable<unknown> {
    const state = peer.state;
    if (state.kind !== 'member') return this.reject(peer, 'not_initialized', undefined, 'Not initialized: send INIT first');
    const sender = state.id;
    const destination = received.destination;
    if (destination === undefined) return this.reject(peer, 'no_destination', sender, 'Destination is missing');
    // The server stamps the source: nobody can pose as another id.
    const out = encodeRelayed(type, sender, destination, received);
    const found = this.rooms.membersWithId(DIRECTORY, destination);
    if (found instanceof Promise) return found.then((connections) => this.deliverTo(peer, connections, out, type, sender, destination));
    this.deliverTo(peer, found, out, type, sender, destination);
  }

  private deliverTo(peer: RelayPeer, connections: Iterable<string>, out: Buffer, type: RelayedType, sender: string, destination: string): void {
    let reached = false;
    for (const connection of connections) if (this.deliver(connection, out)) reached = true;
    if (!reached) return this.reject(peer, 'unknown_destination', sender, `ClientId: ${destination} is not initialized`);
    this.deps.metrics.relayed(type);
  }

  /** Never throws on the frame path: a failing connection is one that was not reached. */
  private deliver(connection: string, out: Buffer): boolean {
    try {
      return this.delivery.deliver(connection, out);
    } catch {
      return false;
    }
  }

  private reject(peer: RelayPeer, reason: Rejection, destination: string | undefined, message: string): void {
    this.deps.metrics.rejected(reason);
    // Guessing ids (taken ones by INIT, live ones by messages) is slowed: past the rate, no answer.
    if ((reason === 'id_taken' || reason === 'unknown_destination') && peer.source !== undefined && this.deps.guesses?.take(peer.source) === false) {
      this.deps.limits?.report('guess_rate', peer.source);
      return;
    }
    peer.send(encodeFrame(frame('ERROR', undefined, destination, message)));
  }

  /** Runs `step` after the peer's pending store calls, or at once when there are none. */
  private inOrder(peer: RelayPeer, step: () => Awaitable<unknown>): void {
    if (peer.pending !== undefined) this.after(peer, step);
    else this.track(peer, step());
  }

  private after(peer: RelayPeer, step: () => Awaitable<unknown>): void {
    this.track(peer, (peer.pending ?? Promise.resolve()).then(step));
  }

  /** Makes a pending step the one the peer's next step waits for. */
  private track(peer: RelayPeer, result: Awaitable<unknown>): void {
    if (!(result instanceof Promise)) return;
    // A failed store call (a cluster's Redis is down) is answered with an ERROR and not retried;
    // the frames after it are still handled, in order.
    const pending: Promise<void> = result.then(
      () => undefined,
      () => peer.send(encodeFrame(frame('ERROR', undefined, undefined, 'Server state unavailable: try again later'))),
    ).then(() => {
      if (peer.pending === pending) peer.pending = undefined;
    });
    peer.pending = pending;
  }
}
