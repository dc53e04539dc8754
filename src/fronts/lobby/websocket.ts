// The lobby's WebSockets: one client per connection, its message rate, pings, shutdown.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Clock, Timer } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import type { AttachableDelivery, Inbox } from '../../core/delivery.js';
import type { ClientId, LobbyEvent } from '../../core/lobbies/index.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { busyResponse, CLOSE, closeGracefully } from '../shared/websocket.js';
import type { ConnectionLimits } from '../shared/connection-limits.js';
import { createSourceThrottle, ThrottledReader, type SourceLimits } from '../shared/read-throttle.js';
import { sourceKey } from '../../core/limits/source-key.js';
import type { SourceThrottle } from '../../core/limits/source-throttle.js';
import type { LobbyLimitReason } from './metrics.js';
import { WS_MAX_PAYLOAD, type LobbyWire } from './wire.js';

/** A client that lets this much outgoing data pile up is cut off rather than buffered forever. */
const WS_MAX_BUFFERED = 4 * 1024 * 1024;

/** The answer to a connection over a connection limit: with CORS, like every HTTP answer. */
export const BUSY_RESPONSE = busyResponse('Access-Control-Allow-Origin: *\r\n');

/** Pings left unanswered before a client counts as dead. */
const MAX_MISSED_PINGS = 2;

/** Without the per-source limits (SourceLimits, all four), messages are not throttled per source. */
export interface LobbyWebSocketOptions extends ConnectionLimits, Partial<SourceLimits> {
  /** How often every client is pinged; a client that misses MAX_MISSED_PINGS in a row is dropped. */
  readonly pingIntervalMs: number;
}

export interface LobbyWebSocketDeps {
  readonly wire: LobbyWire;
  /** What the service delivers through: each connection is attached under its client id. */
  readonly delivery: AttachableDelivery<LobbyEvent>;
  readonly clock: Clock;
  readonly limits: LimitSink<LobbyLimitReason>;
  readonly logger: Logger;
}

/**
 * Upgrades on any path of the HTTP server become clients of the wire (the connection limits were
 * applied when the server accepted the connection). A connection over its message or byte rate
 * is closed with 1008, one that stops answering pings is cut off (a half-open socket would keep
 * its lobby forever), and stop() says going-away (1001) to everyone still connected.
 */
export class LobbyWebSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD });
  /** Open WebSockets and the pings each has left unanswered. */
  private readonly open = new Map<WebSocket, { missed: number }>();
  /** Started with the first connection, so a front that never starts holds no timer. */
  private pinger: Timer | null = null;
  private closing = false;
  /** The messages and bytes of each source over all its WebSockets: reading pauses while it is in debt. */
  private readonly throttle: SourceThrottle | null;

  constructor(
    private readonly options: LobbyWebSocketOptions,
    private readonly deps: LobbyWebSocketDeps,
  ) {
    const { sourceMessageRate, sourceMessageBurst, sourceByteRate, sourceByteBurst } = options;
    this.throttle =
      sourceMessageRate === undefined || sourceMessageBurst === undefined || sourceByteRate === undefined || sourceByteBurst === undefined
        ? null
        : createSourceThrottle({ sourceMessageRate, sourceMessageBurst, sourceByteRate, sourceByteBurst }, deps.clock);
  }

  /** Open WebSockets. */
  get connections(): number {
    return this.open.size;
  }

  /** The HTTP server's 'upgrade' listener. */
  readonly upgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    if (this.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    const ip = normalizeAddress(request.socket.remoteAddress ?? '?');
    this.wss.handleUpgrade(request, socket, head, (ws) => this.connection(ws, ip));
  };

  /** Stops accepting, closes every WebSocket with 1001 and waits a moment for the handshakes. */
  async close(): Promise<void> {
    this.closing = true;
    this.pinger?.cancel();
    const sockets = [...this.open.keys()];
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
    this.pinger ??= clock.setInterval(() => this.pingAll(), this.options.pingIntervalMs);
    const liveness = { missed: 0 };
    this.open.set(ws, liveness);
    ws.on('pong', () => void (liveness.missed = 0));
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
    const handle = (frame: Buffer) => {
      if (ws.readyState === WebSocket.OPEN) then(() => wire.message(frame));
    };
    const reader =
      this.throttle === null
        ? null
        : new ThrottledReader<Buffer>(this.throttle, sourceKey(ip), {
            pause: () => ws.pause(),
            resume: () => ws.resume(),
            throttled: () => limits.report('source_rate', ip),
            size: (frame) => frame.length,
            handle,
            open: () => ws.readyState === WebSocket.OPEN,
          });
    ws.on('message', (data: RawData) => {
      // Frames already on the wire when the socket started closing are dropped.
      if (ws.readyState !== WebSocket.OPEN) return;
      liveness.missed = 0;
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
      if (reader === null) handle(frame);
      else reader.push(frame);
    });
    ws.on('error', (error) => logger.debug({ client: id, err: error.message }, 'lobby WebSocket error'));
    ws.on('close', () => {
      this.open.delete(ws);
      reader?.close();
      then(async () => {
        if (id === undefined) return;
        delivery.detach(id, inbox);
        await wire.disconnected(id);
      });
    });
  }

  private pingAll(): void {
    for (const [ws, liveness] of this.open) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (liveness.missed >= MAX_MISSED_PINGS) {
        this.deps.logger.debug('lobby client answers no pings: cut off');
        ws.terminate();
        continue;
      }
      liveness.missed++;
      ws.ping();
    }
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
