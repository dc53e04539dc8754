// CarParty relay rules without sockets: login, who gets which message, what a leaving peer ends.
import type { Logger } from 'pino';
import type { Member, Room, Rooms } from '../../core/rooms.js';
import type { LimitReporter } from '../../ops/limit-reporter.js';
import { CLOSE } from '../shared/websocket.js';
import { frameText, notice, parseLogin, stampClientId, targetOf } from './codec.js';
import type { CloseReason, WsRelayLimitReason, WsRelayMetrics } from './metrics.js';

/** What a room carries: server messages as received (forwarded byte for byte) or stamped text. */
export type Outgoing = Buffer | string;

/** Where a connection is in its life; only the router moves it on. */
export type PeerState =
  | { readonly kind: 'login' }
  | { readonly kind: 'server'; readonly room: Room<Outgoing> }
  | { readonly kind: 'client'; readonly room: Room<Outgoing>; readonly member: Member<Outgoing> }
  | { readonly kind: 'gone' };

/** The state of a connection that has not logged in yet. */
export const LOGGING_IN: PeerState = { kind: 'login' };
const GONE: PeerState = { kind: 'gone' };

/** One connection as the router sees it. */
export interface RelayPeer {
  /** Source address, as counted by the connection gate and named in limit reports. */
  readonly ip: string;
  state: PeerState;
  /** Puts a text frame on the connection. */
  send(message: Outgoing): void;
  /** Sends a close frame with this code; the router has already ended the peer. */
  close(code: number): void;
  /** The peer has just logged in: its login deadline is over and it is due a first ping. */
  loggedIn(): void;
}

export interface WsRelayRouterDeps {
  readonly rooms: Rooms<Outgoing>;
  readonly metrics: WsRelayMetrics;
  readonly limits: LimitReporter;
  readonly logger: Logger;
  /** Most rooms (server codes) at once; a server login past it is closed like a taken code. */
  readonly maxRooms: number;
}

/** Turns the messages of relay connections into room calls; never sends a client anything but relayed server messages. */
export class WsRelayRouter {
  constructor(private readonly deps: WsRelayRouterDeps) {}

  /** A message the peer sent (the login while it is logging in); ignored once the peer is gone. */
  message(peer: RelayPeer, data: Buffer, isBinary: boolean): void {
    const state = peer.state;
    switch (state.kind) {
      case 'login':
        return this.login(peer, isBinary ? frameText(data) : data.toString('utf8'));
      case 'server': {
        if (isBinary) return this.deps.metrics.dropped('binary');
        const room = state.room;
        const target = targetOf(data.toString('utf8'));
        const reached =
          target.kind === 'all' ? room.broadcast(data) : target.kind === 'id' ? room.toId(target.id, data) : 0;
        if (reached > 0) this.deps.metrics.toClients(reached);
        else this.deps.metrics.dropped('no_receiver');
        return;
      }
      case 'client': {
        if (isBinary) return this.deps.metrics.dropped('binary');
        const member = state.member;
        const stamped = stampClientId(data.toString('utf8'), member.id);
        if (stamped.kind === 'invalid') return this.refuse(peer, 'invalid_json', CLOSE.invalidData);
        if (stamped.kind === 'not-object') return this.deps.metrics.dropped('not_object');
        if (state.room.toOwner(stamped.text, member)) this.deps.metrics.toServer();
        return;
      }
      case 'gone':
        return;
    }
  }

  /**
   * Ends a peer once: a client leaves its room (its server gets `disconnect` if `notify`), a server
   * closes its room (every client gets a close frame). False if it had ended already. Closing the
   * connection itself is the caller's part.
   */
  end(peer: RelayPeer, reason: CloseReason, notify = true): boolean {
    const state = peer.state;
    if (state.kind === 'gone') return false;
    peer.state = GONE;
    this.deps.metrics.closed(reason);
    if (state.kind === 'client') {
      if (state.room.leave(state.member) && notify) state.room.toOwner(notice('disconnect', state.member.id), state.member);
    } else if (state.kind === 'server') {
      state.room.close();
    }
    if (reason !== 'closed') this.deps.logger.debug({ reason, role: state.kind }, 'wsrelay connection dropped');
    return true;
  }

  private login(peer: RelayPeer, text: string | null): void {
    const login = text === null ? null : parseLogin(text);
    if (login === null) return this.refuse(peer, 'bad_login');
    const { rooms } = this.deps;
    const member: Member<Outgoing> = {
      id: login.role === 'client' ? login.clientId : login.code,
      deliver: (message) => peer.send(message),
      released: () => this.released(peer),
    };
    if (login.role === 'server') {
      if (rooms.size >= this.deps.maxRooms && rooms.get(login.code) === undefined) {
        // Refused like a taken code: closed without a message.
        this.deps.limits.report('wsrelay', 'max_rooms' satisfies WsRelayLimitReason, peer.ip);
        return this.refuse(peer, 'max_rooms');
      }
      const room = rooms.open(login.code, member);
      if (room === undefined) return this.refuse(peer, 'code_taken');
      peer.state = { kind: 'server', room };
      this.deps.logger.debug({ code: clip(login.code) }, 'server logged in');
    } else {
      const room = rooms.get(login.code);
      if (room === undefined || room.join(member) !== 'joined') return this.refuse(peer, 'unknown_code');
      peer.state = { kind: 'client', room, member };
      room.toOwner(notice('connect', login.clientId), member);
      this.deps.logger.debug({ code: clip(login.code), clientId: clip(login.clientId) }, 'client logged in');
    }
    peer.loggedIn();
  }

  /** Ends the peer and closes it without a message (the protocol has no error messages). */
  private refuse(peer: RelayPeer, reason: CloseReason, code: number = CLOSE.policy): void {
    if (this.end(peer, reason)) peer.close(code);
  }

  /** The room closed because its server left: close this client without a notice. */
  private released(peer: RelayPeer): void {
    if (peer.state.kind === 'gone') return;
    peer.state = GONE;
    this.deps.metrics.closed('server_left');
    peer.close(CLOSE.normal);
  }
}

function clip(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 64)}…`;
}
