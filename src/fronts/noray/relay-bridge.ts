// connect-relay between a client on this node and a host on another. Netfox sends relay traffic
// to the address it opened TCP to, so each side's relay port lives on its own node; the two
// nodes' relays are chained, each standing in for the other node's player:
//
//   client C (node Q)                               host T (node H)
//   sends to Q:R_Q(X)  -> Q forwards from R_Q(C) ->  H:R_H(T) -> H forwards from R_H(Y) -> T
//   gets from Q:R_Q(X) <- Q forwards from R_Q(X) <-  Q:R_Q(C) <- H forwards from R_H(T) <- T sends to H:R_H(Y)
//
// On Q the host is the endpoint X = H:R_H(T), on H the client is the endpoint Y = Q:R_Q(C), so
// both engines relay as usual (exact endpoints, no learning needed between nodes). Q introduces C
// to a placeholder, asks H over the cluster's delivery to introduce Y to T (H tells T its port),
// and moves the placeholder to X once H answers with R_H(T).
import type { AttachableDelivery } from '../../core/delivery.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { AddressBook } from '../../core/address-book.js';
import type { Clock, Timer } from '../../core/clock.js';
import type { SessionStore } from '../../core/directory.js';
import { nodeOf } from '../../core/shared-state.js';
import type { RelayCharge, RelayEngine } from '../../core/relay/engine.js';
import { encodeCommand } from './codec.js';
import type { HostSession } from './handlers.js';

export type BridgeMessage =
  | {
      readonly kind: 'introduce';
      readonly id: string;
      readonly replyTo: string;
      /** The host's OpenID (its session is looked up on the host's node). */
      readonly oid: string;
      /** Y: the client's relay port on the requesting node. */
      readonly peer: Endpoint;
      readonly charge: RelayCharge;
    }
  | { readonly kind: 'introduced'; readonly id: string; readonly ok: true; readonly host: Endpoint }
  | { readonly kind: 'introduced'; readonly id: string; readonly ok: false; readonly reason: string };

export type BridgeResult = { readonly ok: true; readonly clientPort: number } | { readonly ok: false; readonly reason: string };

export interface RelayBridgeDeps {
  readonly nodeId: string;
  /** Where other nodes reach this node's relay ports. */
  readonly nodeAddress: string;
  readonly relay: RelayEngine;
  readonly sessions: SessionStore<HostSession>;
  readonly addresses: AddressBook;
  /** The noray front's delivery of lines to control connections. */
  readonly lines: AttachableDelivery<string>;
  /** Node-to-node requests and answers. */
  readonly messages: AttachableDelivery<BridgeMessage>;
  readonly clock: Clock;
  /** How long a request waits for the host's node. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 3000;

/** The inbox of a node's bridge: `<nodeId>/relay-bridge`. */
export const bridgeAddress = (nodeId: string): string => `${nodeId}/relay-bridge`;

export class RelayBridge {
  private readonly pending = new Map<string, { resolve: (message: BridgeMessage) => void; timer: Timer }>();
  private nextId = 0;
  /** Placeholders are in 0.0.0.0, which no datagram comes from: one port number each. */
  private nextPlaceholder = 1;
  private readonly inbox = (message: BridgeMessage): void => void this.received(message);

  constructor(private readonly deps: RelayBridgeDeps) {}

  start(): void {
    this.deps.messages.attach(bridgeAddress(this.deps.nodeId), this.inbox);
  }

  stop(): void {
    this.deps.messages.detach(bridgeAddress(this.deps.nodeId), this.inbox);
    for (const { timer, resolve } of this.pending.values()) {
      timer.cancel();
      resolve({ kind: 'introduced', id: '', ok: false, reason: 'server shutting down' });
    }
    this.pending.clear();
  }

  /** Q's part: relays for `client` towards the host `oid` registered on `hostNode`; the port to tell the client. */
  async introduce(client: Endpoint, oid: string, hostNode: string, charge: RelayCharge): Promise<BridgeResult> {
    const { relay } = this.deps;
    const placeholder: Endpoint = { address: '0.0.0.0', port: this.placeholderPort() };
    const local = relay.introduce(client, placeholder, charge);
    if (!local.ok) return { ok: false, reason: local.reason };
    const id = `${this.deps.nodeId}:${this.nextId++}`;
    const answer = await this.ask(hostNode, {
      kind: 'introduce',
      id,
      replyTo: bridgeAddress(this.deps.nodeId),
      oid,
      peer: { address: this.deps.nodeAddress, port: local.portA },
      charge,
    });
    if (answer.kind !== 'introduced' || !answer.ok) return { ok: false, reason: answer.kind === 'introduced' && !answer.ok ? answer.reason : 'bad answer' };
    // Idle relays of a failed attempt are swept like any other; a moved one carries traffic at once.
    if (!relay.move(placeholder, answer.host)) return { ok: false, reason: 'relay endpoint taken' };
    return { ok: true, clientPort: local.portB };
  }

  private placeholderPort(): number {
    const port = this.nextPlaceholder;
    this.nextPlaceholder = (this.nextPlaceholder % 65535) + 1;
    return port;
  }

  private ask(node: string, request: Extract<BridgeMessage, { kind: 'introduce' }>): Promise<BridgeMessage> {
    return new Promise((resolve) => {
      const timer = this.deps.clock.setTimeout(() => {
        this.pending.delete(request.id);
        resolve({ kind: 'introduced', id: request.id, ok: false, reason: 'the host\'s node did not answer' });
      }, this.deps.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      this.pending.set(request.id, { resolve, timer });
      if (!this.deps.messages.deliver(bridgeAddress(node), request)) {
        timer.cancel();
        this.pending.delete(request.id);
        resolve({ kind: 'introduced', id: request.id, ok: false, reason: 'the host\'s node is gone' });
      }
    });
  }

  private async received(message: BridgeMessage): Promise<void> {
    if (message.kind === 'introduced') {
      const waiting = this.pending.get(message.id);
      if (waiting === undefined) return;
      this.pending.delete(message.id);
      waiting.timer.cancel();
      waiting.resolve(message);
      return;
    }
    // A store that cannot answer (Redis down) is a refusal now, not the asker's 3 s timeout.
    const answer = await this.serve(message).catch(
      (): BridgeMessage => ({ kind: 'introduced', id: message.id, ok: false, reason: 'internal error' }),
    );
    this.deps.messages.deliver(message.replyTo, answer);
  }

  /** H's part: introduces the requesting node's relay port to the host and tells the host. */
  private async serve(request: Extract<BridgeMessage, { kind: 'introduce' }>): Promise<BridgeMessage> {
    const refuse = (reason: string): BridgeMessage => ({ kind: 'introduced', id: request.id, ok: false, reason });
    const host = await this.deps.sessions.byPublicId(request.oid);
    if (!host || nodeOf(host.connection) !== this.deps.nodeId) return refuse(`unknown OpenID ${request.oid.slice(0, 64)}`);
    const hostEndpoint = await this.deps.addresses.endpointOf(host.id);
    if (!hostEndpoint) return refuse('host has not registered its address yet');
    const introduced = this.deps.relay.introduce(request.peer, hostEndpoint, request.charge);
    if (!introduced.ok) return refuse(introduced.reason);
    this.deps.lines.deliver(host.connection, encodeCommand('connect-relay', introduced.portA));
    return { kind: 'introduced', id: request.id, ok: true, host: { address: this.deps.nodeAddress, port: introduced.portB } };
  }
}
