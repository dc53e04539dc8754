// The lobby protocol without sockets: client messages to core calls, core events to server
// messages. The WebSocket and UDP parts hand it bytes and give it a way to reach each client.
import type { Logger } from 'pino';
import type { Endpoint } from '../../core/endpoint.js';
import { maskSecret } from '../../core/ids.js';
import type { ClientId, LobbyEvents, LobbyService } from '../../core/lobbies/index.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { ABORT_REASONS } from './errors.js';
import type { InvalidReason, LobbyMetrics, Transport } from './metrics.js';
import { chatPayload, tokenPayload } from './schemas.js';

/** Largest WebSocket message, both the socket's limit (closed with 1009 above it) and the decoder's. */
export const WS_MAX_PAYLOAD = 64 * 1024;
/** Larger datagrams are ignored: a `ptpMediation_connect` with a UUID token is about 80 bytes. */
export const UDP_MAX_DATAGRAM = 2048;

/** Server -> client WebSocket methods. */
export const SERVER_METHODS = {
  clientRegistered: 'client_registered',
  peerConnect: 'lobby_peerConnect',
  peerDisconnect: 'lobby_peerDisconnect',
  lobbyClosed: 'lobby_closed',
  chatReceived: 'lobby_messaging_received',
  mediationSend: 'ptpMediation_send',
  peersConnectionStart: 'ptpMediation_peersConnection_start',
  mediationSuccess: 'ptpMediation_success',
  mediationAborted: 'ptpMediation_aborted',
} as const;

/** Client -> server methods (the first two over WebSocket, the last over UDP). */
export const CLIENT_METHODS = {
  chatSend: 'lobby_messaging_send',
  peersConnectionSuccess: 'ptpMediation_peersConnection_success',
  mediationConnect: 'ptpMediation_connect',
} as const;

/** One client's WebSocket, as the wire sees it. */
export interface LobbyPeer {
  /** Puts a text frame on the socket; dropped if the socket is no longer open. */
  send(frame: string): void;
}

export interface LobbyWireDeps {
  readonly metrics: LobbyMetrics;
  readonly logger: Logger;
  /** The UDP port members are told to send their mediation packet to. */
  readonly udpPort: () => number | null;
}

/**
 * Turns what clients send into LobbyService calls and what the service tells into server
 * messages, each to the peer it is meant for. Never throws on client input: whatever it ignores
 * is counted in noray_lobby_invalid_messages_total.
 */
export class LobbyWire {
  /** The core this wire speaks for; the HTTP part calls it directly. */
  readonly service: LobbyService;
  private readonly peers = new Map<ClientId, LobbyPeer>();

  /** `createService` gets the events the service must report to (the service and the wire need each other). */
  constructor(
    private readonly deps: LobbyWireDeps,
    createService: (events: LobbyEvents) => LobbyService,
  ) {
    this.service = createService(this.events());
  }

  /** A WebSocket opened: a new client, told its token with `client_registered`. */
  connected(peer: LobbyPeer): ClientId {
    const { id, token } = this.service.registerClient();
    this.peers.set(id, peer);
    this.deps.logger.debug({ client: id, token: maskSecret(token) }, 'lobby client registered');
    this.send(id, SERVER_METHODS.clientRegistered, { token });
    return id;
  }

  /** Its WebSocket closed: the client leaves its lobby, closing the lobby if it was the host. */
  disconnected(id: ClientId): void {
    this.peers.delete(id);
    this.service.removeClient(id);
    this.deps.logger.debug({ client: id }, 'lobby client disconnected');
  }

  /** A WebSocket message. It names its client by the token inside, not by the socket it came on. */
  message(data: string | Uint8Array): void {
    const message = decodeMessage(data, { maxBytes: WS_MAX_PAYLOAD });
    if (!message.ok) return this.invalid('ws', 'malformed');
    switch (message.method) {
      case CLIENT_METHODS.chatSend: {
        const chat = chatPayload.safeParse(message.payload);
        if (!chat.success) return this.invalid('ws', 'invalid_payload');
        if (!this.service.sendChat(chat.data.token, chat.data.lobbyId, chat.data.message)) this.invalid('ws', 'rejected');
        return;
      }
      case CLIENT_METHODS.peersConnectionSuccess: {
        const success = tokenPayload.safeParse(message.payload);
        if (!success.success) return this.invalid('ws', 'invalid_payload');
        if (!this.service.reportPeersConnected(success.data.token)) this.invalid('ws', 'rejected');
        return;
      }
      default:
        return this.invalid('ws', 'unknown_method');
    }
  }

  /**
   * A UDP datagram, from the address the server observed (normalized, and already allowed by the
   * address policy). Never answered: a spoofed source must not make the port send anything.
   */
  datagram(data: Uint8Array, from: Endpoint): void {
    const message = decodeMessage(data, { maxBytes: UDP_MAX_DATAGRAM });
    if (!message.ok) return this.invalid('udp', 'malformed');
    if (message.method !== CLIENT_METHODS.mediationConnect) return this.invalid('udp', 'unknown_method');
    const connect = tokenPayload.safeParse(message.payload);
    if (!connect.success) return this.invalid('udp', 'invalid_payload');
    if (!this.service.recordUdpAddress(connect.data.token, from)) this.invalid('udp', 'rejected');
  }

  /** Shutdown: forgets every client and lobby without telling anyone. */
  dispose(): void {
    this.service.dispose();
    this.peers.clear();
  }

  private send(to: ClientId, method: string, payload: object): void {
    this.peers.get(to)?.send(encodeMessage(method, payload));
  }

  private invalid(transport: Transport, reason: InvalidReason): void {
    this.deps.metrics.invalidMessage(transport, reason);
  }

  private events(): LobbyEvents {
    const { metrics, logger, udpPort } = this.deps;
    return {
      peerJoined: (to, lobbyId, peerName) => this.send(to, SERVER_METHODS.peerConnect, { lobbyId, peerName }),
      peerLeft: (to, lobbyId, peerName) => this.send(to, SERVER_METHODS.peerDisconnect, { lobbyId, peerName }),
      lobbyClosed: (to, lobbyId, lobbyName) => this.send(to, SERVER_METHODS.lobbyClosed, { lobbyId, lobbyName }),
      chatReceived: (to, lobbyId, message) =>
        this.send(to, SERVER_METHODS.chatReceived, {
          lobbyId,
          message: { timestamp: message.timestamp, senderName: message.senderName, message: message.message },
        }),
      udpAddressRequested: (to) => this.send(to, SERVER_METHODS.mediationSend, { port: udpPort() }),
      peersConnectionStart: (to, peers) =>
        this.send(to, SERVER_METHODS.peersConnectionStart, {
          peers: peers.map((peer) => ({ ip: peer.address, port: peer.port })),
        }),
      mediationSucceeded: (to) => this.send(to, SERVER_METHODS.mediationSuccess, {}),
      mediationAborted: (to, cause) => this.send(to, SERVER_METHODS.mediationAborted, { abortReason: ABORT_REASONS[cause] }),
      mediationStarted: (lobbyId, members) => {
        metrics.mediationStarted();
        logger.info({ lobbyId, members }, 'mediation started');
      },
      mediationEnded: (lobbyId, outcome) => {
        metrics.mediationEnded(outcome);
        logger.info({ lobbyId, outcome }, 'mediation ended');
      },
    };
  }
}
