// The lobby protocol without sockets: client messages to core calls, core events to server
// messages. The WebSocket and UDP parts hand it bytes; the WebSocket part puts its frames on each client's socket.
import type { Logger } from 'pino';
import type { Endpoint } from '../../core/endpoint.js';
import { maskSecret } from '../../core/ids.js';
import type { ClientId, LobbyEvent, LobbyService, MediationObserver } from '../../core/lobbies/index.js';
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

export interface LobbyWireDeps {
  readonly metrics: LobbyMetrics;
  readonly logger: Logger;
  /** The UDP port members are told to send their mediation packet to. */
  readonly udpPort: () => number | null;
}

/** The metrics and log lines of mediations starting and ending. */
export function mediationObserver(metrics: LobbyMetrics, logger: Logger): MediationObserver {
  return {
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

/**
 * Turns what clients send into LobbyService calls, and each event the service delivers to a
 * client into the server message it gets (`frame`). Never throws on client input: whatever it
 * ignores is counted in noray_lobby_invalid_messages_total. The socket glue attaches each
 * connection to the service's delivery under the id `connected` gives it.
 */
export class LobbyWire {
  constructor(
    private readonly deps: LobbyWireDeps,
    /** The core this wire speaks for; the HTTP part calls it directly. */
    readonly service: LobbyService,
  ) {}

  /** A WebSocket opened: a new client. Its first frame must be `welcome` (client_registered with its token). */
  async connected(): Promise<{ id: ClientId; welcome: string }> {
    const { id, token } = await this.service.registerClient();
    this.deps.logger.debug({ client: id, token: maskSecret(token) }, 'lobby client registered');
    return { id, welcome: encodeMessage(SERVER_METHODS.clientRegistered, { token }) };
  }

  /** Its WebSocket closed: the client leaves its lobby, closing the lobby if it was the host. */
  async disconnected(id: ClientId): Promise<void> {
    await this.service.removeClient(id);
    this.deps.logger.debug({ client: id }, 'lobby client disconnected');
  }

  /** A WebSocket message. It names its client by the token inside, not by the socket it came on. */
  async message(data: string | Uint8Array): Promise<void> {
    const message = decodeMessage(data, { maxBytes: WS_MAX_PAYLOAD });
    if (!message.ok) return this.invalid('ws', 'malformed');
    switch (message.method) {
      case CLIENT_METHODS.chatSend: {
        const chat = chatPayload.safeParse(message.payload);
        if (!chat.success) return this.invalid('ws', 'invalid_payload');
        if (!(await this.service.sendChat(chat.data.token, chat.data.lobbyId, chat.data.message))) this.invalid('ws', 'rejected');
        return;
      }
      case CLIENT_METHODS.peersConnectionSuccess: {
        const success = tokenPayload.safeParse(message.payload);
        if (!success.success) return this.invalid('ws', 'invalid_payload');
        if (!(await this.service.reportPeersConnected(success.data.token))) this.invalid('ws', 'rejected');
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
  async datagram(data: Uint8Array, from: Endpoint): Promise<void> {
    const message = decodeMessage(data, { maxBytes: UDP_MAX_DATAGRAM });
    if (!message.ok) return this.invalid('udp', 'malformed');
    if (message.method !== CLIENT_METHODS.mediationConnect) return this.invalid('udp', 'unknown_method');
    const connect = tokenPayload.safeParse(message.payload);
    if (!connect.success) return this.invalid('udp', 'invalid_payload');
    if (!(await this.service.recordUdpAddress(connect.data.token, from))) this.invalid('udp', 'rejected');
  }

  /** Shutdown: forgets every client and lobby without telling anyone. */
  dispose(): Promise<void> {
    return this.service.dispose();
  }

  /** The server message that tells a client `event`. */
  frame(event: LobbyEvent): string {
    switch (event.kind) {
      case 'peerJoined':
        return encodeMessage(SERVER_METHODS.peerConnect, { lobbyId: event.lobbyId, peerName: event.peerName });
      case 'peerLeft':
        return encodeMessage(SERVER_METHODS.peerDisconnect, { lobbyId: event.lobbyId, peerName: event.peerName });
      case 'lobbyClosed':
        return encodeMessage(SERVER_METHODS.lobbyClosed, { lobbyId: event.lobbyId, lobbyName: event.lobbyName });
      case 'chat': {
        const { timestamp, senderName, message } = event.message;
        return encodeMessage(SERVER_METHODS.chatReceived, { lobbyId: event.lobbyId, message: { timestamp, senderName, message } });
      }
      case 'udpRequested':
        return encodeMessage(SERVER_METHODS.mediationSend, { port: this.deps.udpPort() });
      case 'peersStart':
        return encodeMessage(SERVER_METHODS.peersConnectionStart, {
          peers: event.peers.map((peer) => ({ ip: peer.address, port: peer.port })),
        });
      case 'succeeded':
        return encodeMessage(SERVER_METHODS.mediationSuccess, {});
      case 'aborted':
        return encodeMessage(SERVER_METHODS.mediationAborted, { abortReason: ABORT_REASONS[event.cause] });
    }
  }

  private invalid(transport: Transport, reason: InvalidReason): void {
    this.deps.metrics.invalidMessage(transport, reason);
  }
}
