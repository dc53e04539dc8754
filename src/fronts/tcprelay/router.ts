// The relay's logic without sockets: decoded frames in, core calls, encoded frames out to peers.
import type { Timer } from '../../core/clock.js';
import { randomToken } from '../../core/ids.js';
import { Room, type Member } from '../../core/rooms.js';
import { encodeFrame, frame, type Frame } from './codec.js';
import type { RelayedType, Rejection, TcpRelayMetrics } from './metrics.js';

/** Where one connection stands. Only the router moves a peer from one state to another. */
export type PeerState =
  /** Connected, no INIT has succeeded yet; `deadline` closes the connection unless one does. */
  | { readonly kind: 'login'; readonly deadline: Timer }
  /** Holds an id in the directory. */
  | { readonly kind: 'member'; readonly member: Member<Buffer> }
  /** Gave its id back with CLOSE: holds none, but identified itself once, so no deadline any more. */
  | { readonly kind: 'released' }
  /** The connection ended; nothing is sent to it and nothing it sent is handled. */
  | { readonly kind: 'gone' };

/** The far end of one connection, as the router sees it. */
export interface RelayPeer {
  state: PeerState;
  /** Puts one encoded frame on this peer's connection (the socket side may drop the peer instead). */
  send(encoded: Buffer): void;
}

export interface TcpRelayRouterDeps {
  readonly metrics: Pick<TcpRelayMetrics, 'relayed' | 'rejected'>;
  /** Picks an id for INIT without source; the router retries while the id is taken. */
  readonly newId?: () => string;
}

/** Turns decoded frames into directory calls and answers; every refusal is answered with an ERROR frame. */
export class TcpRelayRouter {
  /** Every id is unique across the relay: one flat room with no owner. */
  private readonly directory = new Room<Buffer>('tcprelay', null, { uniqueIds: true });
  private readonly newId: () => string;

  constructor(private readonly deps: TcpRelayRouterDeps) {
    this.newId = deps.newId ?? randomToken;
  }

  /** Ids currently initialized. */
  get ids(): number {
    return this.directory.size;
  }

  handle(peer: RelayPeer, received: Frame): void {
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

  /**
   * The connection ended, for whatever reason: its id is freed at once and its login deadline
   * cancelled. False if it had already ended.
   */
  disconnected(peer: RelayPeer): boolean {
    const state = peer.state;
    if (state.kind === 'gone') return false;
    if (state.kind === 'login') state.deadline.cancel();
    if (state.kind === 'member') this.directory.leave(state.member);
    peer.state = { kind: 'gone' };
    return true;
  }

  private init(peer: RelayPeer, requested: string | undefined): void {
    // An empty source is treated like no source: the relay picks the id.
    const wanted = requested === '' ? undefined : requested;
    const state = peer.state;
    if (wanted !== undefined && state.kind === 'member' && state.member.id === wanted) {
      return peer.send(encodeFrame(frame('INIT', undefined, wanted)));
    }
    if (wanted !== undefined && this.directory.hasId(wanted)) {
      return this.reject(peer, 'id_taken', wanted, `ClientId: ${wanted} is already initialized`);
    }
    let id = wanted;
    while (id === undefined || this.directory.hasId(id)) id = this.newId();
    const member: Member<Buffer> = { id, deliver: (message) => peer.send(message) };
    if (state.kind === 'member') this.directory.leave(state.member);
    peer.state = { kind: 'member', member };
    this.directory.join(member);
    if (state.kind === 'login') state.deadline.cancel();
    peer.send(encodeFrame(frame('INIT', undefined, id)));
  }

  /** CLOSE frees the id and keeps the connection; without an id it is ignored. */
  private release(peer: RelayPeer): void {
    const state = peer.state;
    if (state.kind !== 'member') return;
    this.directory.leave(state.member);
    peer.state = { kind: 'released' };
  }

  private relay(peer: RelayPeer, type: RelayedType, received: Frame): void {
    const state = peer.state;
    if (state.kind !== 'member') return this.reject(peer, 'not_initialized', undefined, 'Not initialized: send INIT first');
    const sender = state.member;
    const destination = received.destination;
    if (destination === undefined) return this.reject(peer, 'no_destination', sender.id, 'Destination is missing');
    // The server stamps the source: nobody can pose as another id.
    const out = encodeFrame(frame(type, sender.id, destination, received.payload));
    if (this.directory.toId(destination, out, sender) === 0) {
      return this.reject(peer, 'unknown_destination', sender.id, `ClientId: ${destination} is not initialized`);
    }
    this.deps.metrics.relayed(type);
  }

  private reject(peer: RelayPeer, reason: Rejection, destination: string | undefined, message: string): void {
    this.deps.metrics.rejected(reason);
    peer.send(encodeFrame(frame('ERROR', undefined, destination, message)));
  }
}
