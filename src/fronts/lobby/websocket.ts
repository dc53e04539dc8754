// The lobby's WebSockets: upgrade gating, one client per connection, its message rate, shutdown.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Clock } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { ConnectionGate } from '../../core/limits/connection-gate.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import type { Inbox, LocalDelivery } from '../../core/delivery.js';
import type { ClientId, LobbyEvent } from '../../core/lobbies/index.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { busyResponse, CLOSE, closeGracefully, refuseUpgrade } from '../shared/websocket.js';
import type { ConnectionLimits } from '../shared/connection-limits.js';
import type { LobbyLimitReason } from './metrics.js';
import { WS_MAX_PAYLOAD, type LobbyWire } from './wire.js';

/** A client that lets this much outgoing data pile up is cut off rather than buffered forever. */
const WS_MAX_BUFFERED = 4 * 1024 * 1024;

/** The answer to an upgrade over a connection limit, instead of the 101: with CORS, like every HTTP answer. */
export const BUSY_RESPONSE = busyResponse('Access-Control-Allow-Origin: *\r\n');

export type LobbyWebSocketOptions = ConnectionLimits;

export interface LobbyWebSocketDeps {
  readonly wire: LobbyWire;
  /** What the service delivers through: each connection is attached under its client id. */
  readonly delivery: LocalDelivery<LobbyEvent>;
  readonly clock: Clock;
  readonly limits: LimitSink<LobbyLimitReason>;
  readonly logger: Logger;
}

/**
 * Upgrades on any path of the HTTP server become clients of the wire. A connection over its
 * message or byte rate is closed with 1008; stop() says going-away (1001) to everyone still connected.
 */
export class LobbyWebSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD });
  /** Counts every WebSocket from its upgrade request until its socket closes. */
  private readonly gate: ConnectionGate;
  private readonly open = new Set<WebSocket>();
  private closing = false;

  constructor(
    private readonly options: LobbyWebSocketOptions,
    private readonly deps: LobbyWebSocketDeps,
  ) {
    this.gate = new ConnectionGate(options.maxConnections, options.maxConnectionsPerIp);
  }

  /** Open WebSockets. */
  get connections(): number {
    return this.open.size;
  }

  /** Connection-gate slots held: open WebSockets and upgrades still under way. */
  get admitted(): number {
    return this.gate.size;
  }

  /** The HTTP server's 'upgrade' listener. */
  readonly upgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    // A socket already closed would never emit the 'close' that releases its gate slot.
    if (this.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    const ip = normalizeAddress(request.socket.remoteAddress ?? '?');
    const verdict = this.gate.admit(ip);
    if (verdict !== 'ok') {
      const reason: LobbyLimitReason = verdict === 'total' ? 'max_connections' : 'max_connections_per_ip';
      this.deps.limits.report(reason, ip);
      refuseUpgrade(socket, BUSY_RESPONSE);
      return;
    }
    // Released on whatever ends the socket: a failed handshake, any close of the client, close().
    socket.once('close', () => this.gate.release(ip));
    this.wss.handleUpgrade(request, socket, head, (ws) => this.connection(ws, ip));
  };

  /** Stops accepting, closes every WebSocket with 1001 and waits a moment for the handshakes. */
  async close(): Promise<void> {
    this.closing = true;
    const sockets = [...this.open];
    this.open.clear();
    await closeGracefully(sockets, (ws) => ws.close(CLOSE.goingAway, 'server shutting down'));
    this.wss.close();
  }

  private connection(ws: WebSocket, ip: string): void {
    if (this.closing) {
      ws.terminate();
      return;
    }
    const { wire, delivery, clock, limits, logger } = this.deps;
    this.open.add(ws);
    let id: ClientId | undefined;
    const inbox: Inbox<LobbyEvent> = (event) => this.send(ws, wire.frame(event), id);
    // One chain per connection: its registration, then each message in arrival order, then its close.
    let queue: Promise<void> = Promise.resolve();
    const then = (step: () => Promise<void> | void): void => {
      queue = queue
        .then(step)
        .catch((error: unknown) => logger.error({ client: id, err: error }, 'lobby WebSocket handling failed'));
    };
    then(async () => {
      const registered = await wire.connected();
      id = registered.id;
      delivery.attach(registered.id, inbox);
      this.send(ws, registered.welcome, id);
    });
    const bucket = new TokenBucket(this.options.messageRate, this.options.messageBurst, clock);
    const bytes = new TokenBucket(this.options.byteRate, this.options.byteBurst, clock);
    ws.on('message', (data: RawData) => {
      // Frames already on the wire when the socket started closing are dropped.
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!bucket.take()) {
        limits.report('message_rate', ip);
        ws.close(CLOSE.policy, 'message rate exceeded');
        return;
      }
      const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (!bytes.take(frame.length)) {
        limits.report('byte_rate', ip);
        ws.close(CLOSE.policy, 'byte rate exceeded');
        return;
      }
      then(() => wire.message(frame));
    });
    ws.on('error', (error) => logger.debug({ client: id, err: error.message }, 'lobby WebSocket error'));
    ws.on('close', () => {
      this.open.delete(ws);
      then(async () => {
        if (id === undefined) return;
        delivery.detach(id, inbox);
        await wire.disconnected(id);
      });
    });
  }

  private send(ws: WebSocket, frame: string, client: ClientId | undefined): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > WS_MAX_BUFFERED) {
      this.deps.logger.warn({ client }, 'lobby client does not read its WebSocket: disconnected');
      ws.terminate();
      return;
    }
    ws.send(frame);
  }
}
