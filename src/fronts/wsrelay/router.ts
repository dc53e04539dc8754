// CarParty relay rules without sockets: login, who gets which message, what a leaving peer ends.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AttachableDelivery, Inbox } from '../../core/delivery.js';
import type { Awaitable, JoinResult, OpenResult, PurgedRooms, RoomStore } from '../../core/room-store.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import type { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import { sourceKey } from '../../core/limits/source-key.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import { CLOSE } from '../shared/websocket.js';
import { frameText, notice, parseLogin, stampClientId, targetOf } from './codec.js';
import type { CloseReason, WsRelayLimitReason, WsRelayMetrics } from './metrics.js';

/** What a room carries: server messages as received (forwarded byte for byte) or stamped text. */
export type Outgoing = Buffer | string;

/** Delivered to a client whose room closed because its server left. */
export const RELEASED: unique symbol = Symbol('released');

/** What goes through the delivery: messages for the wire, and the release of a client. */
export type Delivered = Outgoing | typeof RELEASED;

/** The delivery the router puts messages through; it attaches its logged-in peers to it. */
export type WsRelayDelivery = AttachableDelivery<Delivered>;

/** A logged-in connection as the store and the delivery know it. */
interface Link {
  /** Random, unique for the connection's life: the identity of its membership or ownership. */
  readonly connection: string;
  readonly inbox: Inbox<Delivered>;
}

/** Where a connection is in its life; only the router moves it on. */
export type PeerState =
  | { readonly kind: 'login' }
  | { readonly kind: 'server'; readonly code: string; readonly link: Link }
  | {
      readonly kind: 'client';
      readonly code: string;
      /** The protocol id: stamped on its messages, named in the notices; need not be unique. */
      readonly clientId: string;
      /** The connection of the room's server (it never changes while the room is open). */
      readonly owner: string;
      readonly link: Link;
    }
  | { readonly kind: 'gone' };

/** The state of a connection that has not logged in yet. */
export const LOGGING_IN: PeerState = { kind: 'login' };
const GONE: PeerState = { kind: 'gone' };

/** One connection as the router sees it. */
export interface RelayPeer {
  /** Source address, as counted by the connection gate and named in limit reports. */
  readonly ip: string;
  state: PeerState;
  /**
   * The router's: set while a store call of this peer is pending (never with the memory store),
   * so whatever the peer does next waits for it and one sender's messages keep their order.
   */
  pending?: Promise<void> | undefined;
  /** Puts a text frame on the connection. */
  send(message: Outgoing): void;
  /** Sends a close frame with this code; the router has already ended the peer. */
  close(code: number): void;
  /** The peer has just logged in: its login deadline is over and it is due a first ping. */
  loggedIn(): void;
}

export interface WsRelayRouterDeps {
  readonly rooms: RoomStore;
  readonly delivery: WsRelayDelivery;
  readonly metrics: WsRelayMetrics;
  readonly limits: LimitSink<WsRelayLimitReason>;
  readonly logger: Logger;
  /** Most rooms (server codes) at once; a server login past it is closed like a taken code. */
  readonly maxRooms: number;
  /** Makes connection ids; random UUIDs unless a test picks them. */
  readonly newConnectionId?: () => string;
  /**
   * Failed logins (unknown code, taken code) per source (sourceKey of the IP): a source over it is
   * refused every login unchecked, so guessing codes learns nothing. None: unlimited.
   */
  readonly guesses?: SourceRateLimiter;
}

/** Turns the messages of relay connections into room calls; never sends a client anything but relayed server messages. */
export class WsRelayRouter {
  private readonly newConnectionId: () => string;
  private readonly failures = new ThrottledLog();

  constructor(private readonly deps: WsRelayRouterDeps) {
    this.newConnectionId = deps.newConnectionId ?? randomUUID;
  }

  /** A message the peer sent (the login while it is logging in); ignored once the peer is gone. */
  message(peer: RelayPeer, data: Buffer, isBinary: boolean): void {
    // Only a store that answers with promises makes a peer wait; the closure is made only then.
    if (peer.pending !== undefined) return this.after(peer, () => this.handle(peer, data, isBinary));
    this.track(peer, this.handle(peer, data, isBinary));
  }

  /**
   * Ends a peer once: a client leaves its room (its server gets `disconnect` if `notify`), a server
   * closes its room (every client gets a close frame). False if it had ended already. Closing the
   * connection itself is the caller's part. With a store call pending, what the peer sent after it
   * is dropped, like data in flight when a connection drops: its server sees a prefix, in order.
   */
  end(peer: RelayPeer, reason: CloseReason, notify = true): boolean {
    const state = peer.state;
    if (state.kind === 'gone') return false;
    peer.state = GONE;
    this.deps.metrics.closed(reason);
    if (state.kind === 'client') {
      this.deps.delivery.detach(state.link.connection, state.link.inbox);
      this.inOrder(peer, () => this.leave(state, notify));
    } else if (state.kind === 'server') {
      this.deps.delivery.detach(state.link.connection, state.link.inbox);
      this.inOrder(peer, () => this.closeRoom(state.code, state.link.connection));
    }
    // A peer still logging in (its store call pending) undoes its login when the answer comes.
    if (reason !== 'closed') this.deps.logger.debug({ reason, role: state.kind }, 'wsrelay connection dropped');
    return true;
  }

  /** Another node died and its rooms were purged: tell who is left, as on each of its disconnects. */
  nodeGone(purged: PurgedRooms): void {
    for (const { released } of purged.closed) this.release(released);
    for (const { id, owner } of purged.left) if (owner !== undefined) this.deliver(owner, notice('disconnect', id));
  }

  private handle(peer: RelayPeer, data: Buffer, isBinary: boolean): Awaitable<void> {
    const state = peer.state;
    switch (state.kind) {
      case 'login':
        return this.login(peer, isBinary ? frameText(data) : data.toString('utf8'));
      case 'server': {
        if (isBinary) return this.deps.metrics.dropped('binary');
        const { rooms } = this.deps;
        const target = targetOf(data.toString('utf8'));
        if (target.kind === 'none') return this.deps.metrics.dropped('no_receiver');
        const found = target.kind === 'all' ? rooms.members(state.code) : rooms.membersWithId(state.code, target.id);
        if (found instanceof Promise) return found.then((connections) => this.toClients(connections, data));
        return this.toClients(found, data);
      }
      case 'client': {
        if (isBinary) return this.deps.metrics.dropped('binary');
        const stamped = stampClientId(data.toString('utf8'), state.clientId);
        if (stamped.kind === 'invalid') return this.refuse(peer, 'invalid_json', CLOSE.invalidData);
        if (stamped.kind === 'not-object') return this.deps.metrics.dropped('not_object');
        if (this.deliver(state.owner, stamped.text)) this.deps.metrics.toServer();
        return;
      }
      case 'gone':
        return;
    }
  }

  private toClients(connections: Iterable<string>, data: Buffer): void {
    let reached = 0;
    for (const connection of connections) if (this.deliver(connection, data)) reached++;
    if (reached > 0) this.deps.metrics.toClients(reached);
    else this.deps.metrics.dropped('no_receiver');
  }

  private login(peer: RelayPeer, text: string | null): Awaitable<void> {
    const login = text === null ? null : parseLogin(text);
    if (login === null) return this.refuse(peer, 'bad_login');
    const { guesses } = this.deps;
    if (guesses !== undefined && !guesses.has(sourceKey(peer.ip))) {
      // Refused before the code is looked at: an answer would tell whether it exists.
      guesses.charge(sourceKey(peer.ip));
      this.deps.limits.report('guess_rate', peer.ip);
      return this.refuse(peer, 'guess_rate');
    }
    const { rooms, delivery } = this.deps;
    const inbox: Inbox<Delivered> = (message) => (message === RELEASED ? this.released(peer) : peer.send(message));
    const link: Link = { connection: this.newConnectionId(), inbox };
    // Reachable before the store call, so nothing sent right after the join can miss it.
    delivery.attach(link.connection, inbox);
    if (login.role === 'server') {
      const opened = rooms.open(login.code, link.connection, { maxRooms: this.deps.maxRooms });
      if (opened instanceof Promise) return opened.then((result) => this.opened(peer, login.code, link, result));
      return this.opened(peer, login.code, link, opened);
    }
    const joined = rooms.join(login.code, { connection: link.connection, id: login.clientId });
    if (joined instanceof Promise) return joined.then((result) => this.joined(peer, login.code, login.clientId, link, result));
    return this.joined(peer, login.code, login.clientId, link, joined);
  }

  private opened(peer: RelayPeer, code: string, link: Link, result: OpenResult): Awaitable<void> {
    if (result !== 'opened' || peer.state.kind === 'gone') this.deps.delivery.detach(link.connection, link.inbox);
    // Ended while the store answered: give the code back.
    if (peer.state.kind === 'gone') return result === 'opened' ? this.closeRoom(code, link.connection) : undefined;
    if (result === 'full') {
      // Refused like a taken code: closed without a message.
      this.deps.limits.report('max_rooms', peer.ip);
      return this.refuse(peer, 'max_rooms');
    }
    if (result === 'taken') return this.refuseGuess(peer, 'code_taken');
    peer.state = { kind: 'server', code, link };
    this.deps.logger.debug({ code: clip(code) }, 'server logged in');
    peer.loggedIn();
  }

  private joined(peer: RelayPeer, code: string, clientId: string, link: Link, result: JoinResult): Awaitable<void> {
    if (result !== 'joined') {
      this.deps.delivery.detach(link.connection, link.inbox);
      return this.refuseGuess(peer, 'unknown_code');
    }
    const owner = this.deps.rooms.owner(code);
    if (owner instanceof Promise) return owner.then((found) => this.welcome(peer, code, clientId, link, found));
    return this.welcome(peer, code, clientId, link, owner);
  }

  private welcome(peer: RelayPeer, code: string, clientId: string, link: Link, owner: string | undefined): Awaitable<void> {
    if (owner === undefined || peer.state.kind === 'gone') {
      // Ended while the store answered, or the room closed in between: leave without a notice.
      this.deps.delivery.detach(link.connection, link.inbox);
      const left = this.deps.rooms.leave(code, link.connection);
      if (owner === undefined) this.refuseGuess(peer, 'unknown_code');
      return left instanceof Promise ? left.then(() => undefined) : undefined;
    }
    peer.state = { kind: 'client', code, clientId, owner, link };
    this.deliver(owner, notice('connect', clientId));
    this.deps.logger.debug({ code: clip(code), clientId: clip(clientId) }, 'client logged in');
    peer.loggedIn();
  }

  private leave(state: Extract<PeerState, { kind: 'client' }>, notify: boolean): Awaitable<void> {
    const left = this.deps.rooms.leave(state.code, state.link.connection);
    if (left instanceof Promise) return left.then((was) => this.left(state, was && notify));
    this.left(state, left && notify);
  }

  private left(state: Extract<PeerState, { kind: 'client' }>, notify: boolean): void {
    if (notify) this.deliver(state.owner, notice('disconnect', state.clientId));
  }

  /** Closes a server's room; every client it released is told through the delivery. */
  private closeRoom(code: string, owner: string): Awaitable<void> {
    const released = this.deps.rooms.close(code, owner);
    if (released instanceof Promise) return released.then((connections) => this.release(connections));
    this.release(released);
  }

  private release(connections: readonly string[] | undefined): void {
    if (connections !== undefined) for (const connection of connections) this.deliver(connection, RELEASED);
  }

  /** Ends the peer and closes it without a message (the protocol has no error messages). */
  private refuse(peer: RelayPeer, reason: CloseReason, code: number = CLOSE.policy): void {
    if (this.end(peer, reason)) peer.close(code);
  }

  /** A login whose code told the peer something (taken, unknown): counted as a guess of its source. */
  private refuseGuess(peer: RelayPeer, reason: 'code_taken' | 'unknown_code'): void {
    this.deps.guesses?.charge(sourceKey(peer.ip));
    this.refuse(peer, reason);
  }

  /** The room closed because its server left: close this client without a notice. */
  private released(peer: RelayPeer): void {
    const state = peer.state;
    if (state.kind === 'gone') return;
    peer.state = GONE;
    if (state.kind === 'client') this.deps.delivery.detach(state.link.connection, state.link.inbox);
    this.deps.metrics.closed('server_left');
    peer.close(CLOSE.normal);
  }

  /** Never throws on the message path: one bad connection cannot stop a fan-out. */
  private deliver(connection: string, message: Delivered): boolean {
    try {
      return this.deps.delivery.deliver(connection, message);
    } catch (err) {
      this.deps.logger.warn({ err }, 'wsrelay delivery failed');
      return false;
    }
  }

  /** Runs `step` after the peer's pending store calls, or at once when there are none. */
  private inOrder(peer: RelayPeer, step: () => Awaitable<void>): void {
    if (peer.pending !== undefined) this.after(peer, step);
    else this.track(peer, step());
  }

  private after(peer: RelayPeer, step: () => Awaitable<void>): void {
    this.track(peer, (peer.pending ?? Promise.resolve()).then(step));
  }

  /** Makes a pending step the one the peer's next step waits for. */
  private track(peer: RelayPeer, result: Awaitable<void>): void {
    if (!(result instanceof Promise)) return;
    const pending: Promise<void> = result
      .catch((err: unknown) => {
        this.failures.report((skipped) => this.deps.logger.warn({ err, skipped }, 'wsrelay room store call failed'));
        // A login the store could not answer (a cluster's Redis is down): closed, so it can retry.
        if (peer.state.kind === 'login') this.refuse(peer, 'unavailable', CLOSE.internalError);
      })
      .then(() => {
        if (peer.pending === pending) peer.pending = undefined;
      });
    peer.pending = pending;
  }
}

function clip(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 64)}…`;
}
