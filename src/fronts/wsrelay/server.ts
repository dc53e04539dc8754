// The sockets of the WebSocket relay: HTTP upgrade and gating, corking, pings, deadlines, shutdown.
// What a message means and where it goes is the router's part.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Timer } from '../../core/clock.js';
import type { MessageCodec } from '../../core/delivery.js';
import { normalizeAddress } from '../../core/endpoint.js';
import type { GateVerdict } from '../../core/limits/connection-gate.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import type { RoomCounts, RoomStore } from '../../core/room-store.js';
import type { Front, FrontDeps } from '../front.js';
import { listenTcp } from '../shared/listen.js';
import { AcceptGate, httpDeadlines } from '../shared/accept-gate.js';
import { createListener, type TlsContext } from '../shared/tls.js';
import { busyResponse, CLOSE, closeGracefully } from '../shared/websocket.js';
import { ageSeconds, collectRows, type FrontTable, type Inspectable, type TableQuery } from '../inspection.js';
import { createWsRelayMetrics, type CloseReason, type WsRelayLimitReason } from './metrics.js';
import { LOGGING_IN, RELEASED, WsRelayRouter, type Delivered, type Outgoing, type RelayPeer } from './router.js';
import type { ConnectionLimits } from '../shared/connection-limits.js';
import { createSourceThrottle, ThrottledReader, type SourceLimits } from '../shared/read-throttle.js';
import { sourceKey } from '../../core/limits/source-key.js';
import type { SourceThrottle } from '../../core/limits/source-throttle.js';

/** What the wsrelay front reads of the config (picked in index.ts); its message rate counts the login too, not the fan-out. */
export interface WsRelayOptions extends ConnectionLimits, SourceLimits {
  readonly host: string;
  /** null: switched off, start() rejects. */
  readonly port: number | null;
  /** Largest message accepted; a larger one closes the connection with 1009. */
  readonly maxMessageSize: number;
  /** Bytes queued for one peer before it is dropped as too slow. */
  readonly sendBuffer: number;
  readonly pingIntervalMs: number;
  /** Connections that have not logged in by then are closed with 1008. */
  readonly loginTimeoutMs: number;
  /** Most rooms (server codes) at once. */
  readonly maxRooms: number;
  /** Failed logins (unknown or taken code) per second from one source, and at once. */
  readonly guessRate: number;
  readonly guessBurst: number;
  /** NORAY_TLS_CERT/KEY: WSS instead of WS (absent or null: plain). */
  readonly tls?: TlsContext | null;
}

/** The front's dependencies: everything of FrontDeps but the config, whose part is WsRelayOptions. */
export type WsRelayDeps = Omit<FrontDeps, 'config'>;

interface Connection extends RelayPeer {
  readonly ws: WebSocket;
  /** The upgraded TCP socket under `ws`, corked while a burst of sends is collected. */
  readonly socket: Duplex;
  /** Messages this peer may still send (every message counts, the login too; fan-out does not). */
  readonly bucket: TokenBucket;
  /** Payload bytes this peer may still send: a flood of big messages costs parsing for everyone. */
  readonly bytes: TokenBucket;
  /** Admits each message by its source's budget: while the source is in debt, the socket is not read. */
  readonly reader: ThrottledReader<Message>;
  /** Closes the peer if it has not logged in by then; null once logged in or gone. */
  loginTimer: Timer | null;
  corked: boolean;
  /** Pings sent since the last sign of life. */
  missed: number;
  /** When the connection was accepted (the dashboard's room age). */
  readonly openedAt: number;
}

/** A received message, as ws gave it. */
interface Message {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** Pings left unanswered before a peer counts as dead. */
const MAX_MISSED_PINGS = 2;

/** Corked bytes that make a peer's socket flush before the end of the burst. */
const CORK_FLUSH_BYTES = 64 * 1024;
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';
const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';
const BUSY = busyResponse();

/** One tag byte, then the message: one allocation per cross-node delivery. */
function tagged(tag: number, message: string | Buffer): Buffer {
  const length = typeof message === 'string' ? Buffer.byteLength(message, 'utf8') : message.length;
  const out = Buffer.allocUnsafe(1 + length);
  out[0] = tag;
  if (typeof message === 'string') out.write(message, 1, 'utf8');
  else message.copy(out, 1);
  return out;
}

/** A delivery on another node: one tag byte (text, binary, released), then the message. */
const DELIVERED_CODEC: MessageCodec<Delivered> = {
  encode: (message) => (message === RELEASED ? Buffer.of(2) : tagged(typeof message === 'string' ? 0 : 1, message)),
  decode: (bytes) => (bytes[0] === 2 ? RELEASED : bytes[0] === 0 ? bytes.subarray(1).toString('utf8') : bytes.subarray(1)),
};

export class WsRelayFront implements Front {
  readonly name = 'wsrelay';
  private readonly log;
  private readonly rooms: RoomStore;
  private readonly peers = new Map<WebSocket, Connection>();
  private readonly router: WsRelayRouter;
  private readonly limits: LimitSink<WsRelayLimitReason>;
  /** Counts every TCP connection from accept until it closes; refuses over the connection limits. */
  private readonly gate: AcceptGate;
  private http: Server | null = null;
  private wss: WebSocketServer | null = null;
  private pinger: Timer | null = null;
  private boundPort = 0;
  private stopped = false;
  /** The messages and bytes of each source over all its connections: reading pauses while it is in debt. */
  private readonly throttle: SourceThrottle;

  constructor(
    private readonly deps: WsRelayDeps,
    private readonly options: WsRelayOptions,
  ) {
    this.log = deps.logger.child({ front: 'wsrelay' });
    this.limits = deps.limits.forFront<WsRelayLimitReason>('wsrelay');
    this.gate = new AcceptGate({
      maxConnections: options.maxConnections,
      maxConnectionsPerIp: options.maxConnectionsPerIp,
      busyResponse: BUSY,
      refused: (ip, verdict) => this.refused(ip, verdict),
    });
    this.throttle = createSourceThrottle(options, deps.clock);
    const rooms = (this.rooms = deps.state.rooms('wsrelay'));
    const delivery = deps.state.delivery('wsrelay', DELIVERED_CODEC);
    const { peers } = this;
    const metrics = createWsRelayMetrics(deps.metrics, {
      connections: () => peers.size,
      rooms: () => this.counts().rooms,
      clients: () => this.counts().members,
    });
    // A dead node's rooms close and its phones leave, as on their disconnects.
    deps.state.onNodeGone(async (node) => {
      const purged = await rooms.purgeNode?.(node);
      if (purged !== undefined) this.router.nodeGone(purged);
    });
    this.router = new WsRelayRouter({
      rooms,
      delivery,
      metrics,
      limits: this.limits,
      logger: this.log,
      maxRooms: options.maxRooms,
      guesses: new SourceRateLimiter(options.guessRate, options.guessBurst, deps.clock),
      newConnectionId: () => deps.state.newConnectionId(),
    });
  }

  async start(): Promise<void> {
    const { host, port } = this.options;
    if (port === null) throw new Error('wsrelay is switched off');
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxMessageSize,
      clientTracking: false,
      perMessageDeflate: false,
    });
    const http = createListener(this.options.tls ?? null, httpDeadlines(this.options.handshakeTimeoutMs), (_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      response.end('WebSocket only\n');
    });
    // Not HTTP at all (400), or not a whole request by the handshake deadline (408): answer and
    // close our side fully instead of waiting for the peer.
    http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const answer = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? REQUEST_TIMEOUT : BAD_REQUEST;
      if (socket.writable) socket.end(answer, () => socket.destroy());
      else socket.destroy();
    });
    this.gate.install(http);
    http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.stopped || socket.destroyed) return void socket.destroy();
      const ip = normalizeAddress(request.socket.remoteAddress ?? '?');
      wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, ip));
    });
    this.wss = wss;
    this.http = http;
    this.boundPort = await listenTcp(http, port, host, (err) => this.log.warn({ err }, 'wsrelay listener error'));
    this.pinger = this.deps.clock.setInterval(() => this.pingAll(), this.options.pingIntervalMs);
    this.log.info({ host, port: this.boundPort }, 'wsrelay listening');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pinger?.cancel();
    // Every peer is told with a close frame (1001 going away; phones whose server went first get
    // 1000), the close handshakes get a moment, then whoever has not answered is cut off.
    // closeGracefully sends every close frame before its first await, so the rooms are closed
    // (each server's drop closes its room) and the corked sockets flushed right after the last
    // frame, as before the wait.
    const closed = closeGracefully([...this.peers.keys()], (ws) => {
      const peer = this.peers.get(ws);
      if (peer !== undefined) this.drop(peer, 'shutdown', CLOSE.goingAway, false);
    });
    this.uncorkAll();
    await closed;
    const http = this.http;
    if (http !== null) {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
        this.gate.destroyRefused();
      });
    }
    this.wss?.close();
    this.peers.clear();
  }

  ports(): Record<string, number> {
    return { ws: this.boundPort };
  }

  stats(): Record<string, number> {
    const { rooms, members } = this.counts();
    return { connections: this.peers.size, rooms, clients: members, admitted: this.gate.admitted };
  }

  /** This node's rooms (their game servers connect here) and phones on the dashboard; an operator may close a room. */
  readonly inspection: Inspectable = {
    tables: async (query) => [this.roomTable(query)],
    act: async (action, code) => {
      if (action !== 'close-room') return 'unknown_action';
      for (const peer of this.peers.values()) {
        if (peer.state.kind === 'server' && peer.state.code === code) {
          // As if the game server left: its phones are told, the code is free again.
          this.drop(peer, 'operator', CLOSE.goingAway);
          return 'done';
        }
      }
      return 'not_found';
    },
  };

  private roomTable(query: TableQuery): FrontTable {
    const now = this.deps.clock.now();
    const rooms = new Map<string, { openedAt: number; phones: number }>();
    for (const peer of this.peers.values()) {
      const { state } = peer;
      if (state.kind === 'server') rooms.set(state.code, { openedAt: peer.openedAt, phones: 0 });
    }
    for (const peer of this.peers.values()) {
      if (peer.state.kind !== 'client') continue;
      const room = rooms.get(peer.state.code);
      if (room) room.phones++;
    }
    const { rows, total } = collectRows(rooms, ([code, room]) => [code, room.phones, ageSeconds(now, room.openedAt)], query);
    return {
      id: 'rooms',
      title: 'Rooms',
      columns: [
        { name: 'code', kind: 'text' },
        { name: 'phones here', kind: 'count' },
        { name: 'age', kind: 'age' },
      ],
      rows,
      total,
      action: { name: 'close-room', label: 'Close room' },
    };
  }

  /**
   * Rooms and their clients: the store's own counts when this process holds them all, otherwise
   * those of this node's connections (a cluster's totals are in Redis, and a scrape must not ask it).
   */
  private counts(): RoomCounts {
    if (!this.deps.state.clustered) return this.rooms.counts() as RoomCounts;
    let rooms = 0;
    let members = 0;
    for (const peer of this.peers.values()) {
      if (peer.state.kind === 'server') rooms++;
      else if (peer.state.kind === 'client') members++;
    }
    return { rooms, members };
  }

  /** A connection over a connection limit (answered an HTTP 503 by the gate, then closed). */
  private refused(ip: string, verdict: Exclude<GateVerdict, 'ok'>): void {
    this.limits.report(verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip);
  }

  private accept(ws: WebSocket, socket: Duplex, ip: string): void {
    const { clock } = this.deps;
    const peer: Connection = {
      ws,
      socket,
      ip,
      bucket: new TokenBucket(this.options.messageRate, this.options.messageBurst, clock),
      bytes: new TokenBucket(this.options.byteRate, this.options.byteBurst, clock),
      reader: new ThrottledReader<Message>(this.throttle, sourceKey(ip), {
        pause: () => ws.pause(),
        resume: () => ws.resume(),
        throttled: () => this.limits.report('source_rate', ip),
        size: (message) => message.data.length,
        handle: (message) => {
          if (peer.state.kind !== 'gone') this.router.message(peer, message.data, message.isBinary);
        },
        open: () => peer.state.kind !== 'gone' && ws.readyState === WebSocket.OPEN,
      }),
      loginTimer: null,
      corked: false,
      state: LOGGING_IN,
      missed: 0,
      openedAt: clock.now(),
      send: (message) => this.send(peer, message),
      close: (code) => {
        cancelLoginTimer(peer);
        ws.close(code);
      },
      loggedIn: () => {
        cancelLoginTimer(peer);
        this.ping(peer);
      },
    };
    if (this.stopped) return void ws.terminate();
    this.peers.set(ws, peer);
    peer.loginTimer = clock.setTimeout(() => {
      peer.loginTimer = null;
      if (peer.state.kind !== 'login') return;
      this.limits.report('login_timeout', ip);
      this.drop(peer, 'login_timeout', CLOSE.policy);
    }, this.options.loginTimeoutMs);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(peer, data as Buffer, isBinary));
    ws.on('pong', () => void (peer.missed = 0));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already started closing with the right code (1009 too large, 1007 bad UTF-8, 1002).
      const reason: CloseReason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'too_large' : 'protocol_error';
      if (reason === 'too_large' && peer.state.kind !== 'gone') {
        this.limits.report('message_too_large', ip);
      }
      this.drop(peer, reason, 'none');
    });
    ws.on('close', () => {
      this.drop(peer, 'closed', 'none');
      peer.reader.close();
      this.peers.delete(ws);
    });
  }

  private onMessage(peer: Connection, data: Buffer, isBinary: boolean): void {
    if (peer.state.kind === 'gone') return;
    peer.missed = 0;
    if (!peer.bucket.take()) {
      this.limits.report('message_rate', peer.ip);
      return this.drop(peer, 'message_rate', CLOSE.policy);
    }
    if (!peer.bytes.take(data.length)) {
      this.limits.report('byte_rate', peer.ip);
      return this.drop(peer, 'byte_rate', CLOSE.policy);
    }
    peer.reader.push({ data, isBinary });
  }

  private send(peer: Connection, message: Outgoing): void {
    const ws = peer.ws;
    if (peer.state.kind === 'gone' || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > this.options.sendBuffer) {
      this.limits.report('slow_reader', peer.ip);
      return this.drop(peer, 'slow_reader', 'terminate');
    }
    // A fan-out sends one frame per client per message; corking until the burst is over turns
    // many small writes into one writev per client.
    if (!peer.corked) {
      peer.corked = true;
      peer.socket.cork();
      this.corked.push(peer);
      if (this.corked.length === 1) setImmediate(this.uncorkAll);
    }
    ws.send(message, { binary: false });
    // Big bursts go out at once, so the slow-peer check above only sees what the kernel refused.
    if (peer.corked && peer.socket.writableLength >= CORK_FLUSH_BYTES) {
      peer.corked = false;
      peer.socket.uncork();
    }
  }

  private readonly corked: Connection[] = [];
  private readonly uncorkAll = (): void => {
    for (const peer of this.corked) {
      if (!peer.corked) continue;
      peer.corked = false;
      peer.socket.uncork();
    }
    this.corked.length = 0;
  };

  /**
   * Ends a peer once (see WsRelayRouter.end), then acts on its socket. `how`: a close code,
   * 'terminate', or 'none' when the socket is already closing.
   */
  private drop(peer: Connection, reason: CloseReason, how: number | 'terminate' | 'none', notify = true): void {
    cancelLoginTimer(peer);
    if (!this.router.end(peer, reason, notify)) return;
    if (how === 'terminate') peer.ws.terminate();
    else if (how !== 'none') peer.ws.close(how);
  }

  private pingAll(): void {
    for (const peer of this.peers.values()) {
      if (peer.state.kind === 'gone') continue;
      if (peer.missed >= MAX_MISSED_PINGS) this.drop(peer, 'dead', 'terminate');
      else this.ping(peer);
    }
  }

  private ping(peer: Connection): void {
    if (peer.ws.readyState !== WebSocket.OPEN) return;
    peer.missed++;
    peer.ws.ping();
  }
}

function cancelLoginTimer(peer: Connection): void {
  peer.loginTimer?.cancel();
  peer.loginTimer = null;
}
