// The TCP glue of the relay: accepts and gates sockets, feeds the decoder, enforces the frame rate,
// the login deadline and the send buffer, and hands decoded frames to the router.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { ConnectionGate } from '../../core/limits/connection-gate.js';
import { Reservations } from '../../core/limits/reservations.js';
import { sourceKey } from '../../core/limits/source-key.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import { BYTES_CODEC } from '../../core/codecs.js';
import type { SharedState } from '../../core/shared-state.js';
import type { LimitReports, LimitSink } from '../../core/limits/reporting.js';
import type { Front } from '../front.js';
import { listenTcp } from '../shared/listen.js';
import { endWithMessage } from '../shared/socket-close.js';
import { encodeFrame, frame, FrameDecoder } from './codec.js';
import {
  createTcpRelayMetrics,
  malformedReason,
  type CloseReason,
  type TcpRelayLimitReason,
  type TcpRelayMetrics,
} from './metrics.js';
import { TcpRelayRouter, type RelayPeer } from './router.js';

/** What the tcprelay front reads from the config, picked in one place (index.ts). */
export interface TcpRelayOptions {
  readonly host: string;
  readonly port: number;
  /** Largest frame body accepted; a larger announced length closes the connection. */
  readonly maxFrameSize: number;
  /** Bytes queued for one peer before it is disconnected as too slow. */
  readonly sendBuffer: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Frames per second one connection may send on average, and how many at once. */
  readonly messageRate: number;
  readonly messageBurst: number;
  /** A connection without a successful INIT by then is closed; after one, never. */
  readonly loginTimeoutMs: number;
  /** An id freed by a disconnect is kept this long for INITs from the same source (0: not at all). */
  readonly idReservationMs: number;
  /** Answers to failed INITs and unknown destinations per second (and at once) to one source. */
  readonly guessRate: number;
  readonly guessBurst: number;
}

/** The shared services the front runs with (everything of FrontDeps but the config). */
export interface TcpRelayDeps {
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly clock: Clock;
  readonly limits: LimitReports;
  readonly state: SharedState;
}

/** One accepted connection; `state` belongs to the router. */
interface Conn extends RelayPeer {
  readonly socket: Socket;
  /** Source address, as counted by the connection gate and named in limit reports. */
  readonly ip: string;
  readonly decoder: FrameDecoder;
  /** Frames this connection may still send. */
  readonly bucket: TokenBucket;
  /** Senders paused until this connection's send buffer drains. */
  readonly waiting: Set<Conn>;
  /** How many peers' full send buffers hold this connection paused. */
  pausedBy: number;
  /** Set while relaying to a destination far over its send buffer: cut after the frame. */
  cut: boolean;
}

/** Read through a call: the router changes the state while a chunk's frames are handled. */
const gone = (conn: Conn): boolean => conn.state.kind === 'gone';

const BUSY_FRAME = encodeFrame(frame('ERROR', undefined, undefined, 'Server busy: too many connections'));

export class TcpRelayServer implements Front {
  readonly name = 'tcprelay';
  private readonly log: Logger;
  private readonly metrics: TcpRelayMetrics;
  private readonly router: TcpRelayRouter;
  private readonly conns = new Set<Conn>();
  /** Counts every accepted socket until it closes, refused ones not included. */
  private readonly gate: ConnectionGate;
  /** Refused sockets still flushing their busy ERROR frame. */
  private readonly refused = new Set<Socket>();
  private server: Server | null = null;
  private boundPort = 0;
  private stopped = false;
  private readonly limits: LimitSink<TcpRelayLimitReason>;
  /** The connection whose frame is being handled: a write to another connection is a relayed one. */
  private sending: Conn | null = null;

  constructor(
    private readonly options: TcpRelayOptions,
    private readonly deps: TcpRelayDeps,
  ) {
    this.log = deps.logger.child({ front: 'tcprelay' });
    this.limits = deps.limits.forFront<TcpRelayLimitReason>('tcprelay');
    this.gate = new ConnectionGate(options.maxConnections, options.maxConnectionsPerIp);
    this.metrics = createTcpRelayMetrics(deps.metrics, {
      connections: () => this.conns.size,
      ids: () => this.router.ids,
    });
    this.router = new TcpRelayRouter({
      metrics: this.metrics,
      rooms: deps.state.rooms('tcprelay'),
      delivery: deps.state.delivery('tcprelay', BYTES_CODEC),
      newConnectionId: () => deps.state.newConnectionId(),
      reservations: new Reservations(options.idReservationMs, deps.clock),
      guesses: new SourceRateLimiter(options.guessRate, options.guessBurst, deps.clock),
      limits: this.limits,
    });
  }

  async start(): Promise<void> {
    const { host, port } = this.options;
    const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) =>
      this.accept(socket),
    );
    this.server = server;
    this.boundPort = await listenTcp(server, port, host, (err) => this.log.warn({ err }, 'tcprelay listener error'));
    this.log.info({ host, port: this.boundPort }, 'tcprelay listening');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const server = this.server;
    const closed = server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of this.conns) {
      this.drop(conn, 'shutdown');
      conn.socket.destroy();
    }
    for (const socket of this.refused) socket.destroy();
    await closed;
    this.conns.clear();
  }

  ports(): Record<string, number> {
    return { tcp: this.boundPort };
  }

  stats(): Record<string, number> {
    return { connections: this.conns.size, ids: this.router.ids, admitted: this.gate.size };
  }

  private accept(socket: Socket): void {
    if (this.stopped || socket.destroyed) return void socket.destroy();
    const { options } = this;
    const ip = normalizeAddress(socket.remoteAddress ?? '?');
    const verdict = this.gate.admit(ip);
    if (verdict !== 'ok') {
      this.limit(verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip);
      return this.refuse(socket);
    }
    const deadline = this.deps.clock.setTimeout(() => {
      this.limit('login_timeout', ip);
      this.closeWithError(conn, 'login_timeout', 'Login timeout: no INIT in time');
    }, options.loginTimeoutMs);
    const conn: Conn = {
      socket,
      ip,
      decoder: new FrameDecoder({ maxFrameSize: options.maxFrameSize }),
      bucket: new TokenBucket(options.messageRate, options.messageBurst, this.deps.clock),
      state: { kind: 'login', deadline },
      source: sourceKey(ip),
      waiting: new Set<Conn>(),
      pausedBy: 0,
      cut: false,
      send: (encoded) => this.write(conn, encoded),
    };
    socket.on('drain', () => this.resumeSenders(conn));
    this.conns.add(conn);
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', () => this.drop(conn, 'error'));
    socket.on('close', () => {
      this.drop(conn, 'closed');
      this.resumeSenders(conn);
      this.conns.delete(conn);
      this.gate.release(ip);
    });
  }

  /** Over a connection limit: one ERROR frame, then close (reading and discarding until then). */
  private refuse(socket: Socket): void {
    this.refused.add(socket);
    socket.on('close', () => this.refused.delete(socket));
    endWithMessage(socket, BUSY_FRAME);
  }

  private onData(conn: Conn, chunk: Buffer): void {
    if (gone(conn)) return;
    const { frames, error } = conn.decoder.push(chunk);
    for (const received of frames) {
      // Handling the previous frame may have ended this connection (e.g. it was too slow to read the answer).
      if (gone(conn)) return;
      if (!conn.bucket.take()) {
        this.limit('message_rate', conn.ip);
        return this.closeWithError(conn, 'message_rate', 'Too many frames: slow down');
      }
      this.sending = conn;
      try {
        this.router.handle(conn, received);
      } finally {
        this.sending = null;
      }
      if (conn.cut) {
        this.limit('sender_cut', conn.ip);
        return this.drop(conn, 'sender_cut');
      }
    }
    if (error !== null) {
      this.log.debug({ code: error.code }, 'malformed frame');
      if (error.code === 'FRAME_TOO_LARGE') this.limit('frame_too_large', conn.ip);
      this.drop(conn, malformedReason(error.code));
    }
  }

  /**
   * Backpressure. What others send never gets a peer closed: past its send buffer the sender is
   * paused until the peer drains, and a sender that still pushes past twice the buffer (frames
   * decoded before the pause) is cut, its frame dropped. A peer whose own answers pass the send
   * buffer (it does not read what it asked for) is dropped.
   */
  private write(conn: Conn, data: Buffer): void {
    if (gone(conn)) return;
    const sender = this.sending;
    if (sender !== null && sender !== conn && !gone(sender)) {
      const queued = conn.socket.writableLength;
      if (queued > 2 * this.options.sendBuffer) {
        sender.cut = true;
        return;
      }
      conn.socket.write(data);
      if (queued + data.length > this.options.sendBuffer && !conn.waiting.has(sender)) {
        this.limit('backpressure', sender.ip);
        conn.waiting.add(sender);
        if (sender.pausedBy++ === 0) sender.socket.pause();
      }
      return;
    }
    if (conn.socket.writableLength > this.options.sendBuffer) {
      this.limit('slow_reader', conn.ip);
      return this.drop(conn, 'slow_reader');
    }
    conn.socket.write(data);
  }

  /** The peer drained (or closed): the senders paused for it read again, unless another peer holds them. */
  private resumeSenders(conn: Conn): void {
    for (const sender of conn.waiting) {
      if (--sender.pausedBy === 0 && !gone(sender)) sender.socket.resume();
    }
    conn.waiting.clear();
  }

  /** Ends a connection once; its id is freed at once, whatever the reason. */
  private drop(conn: Conn, reason: CloseReason): void {
    if (!this.forget(conn, reason)) return;
    conn.socket.destroy();
  }

  /**
   * Ends a connection once with one ERROR frame saying why. Until the peer closes its side (or the
   * grace time is over) its bytes are read and discarded, so a reset does not swallow the frame.
   */
  private closeWithError(conn: Conn, reason: CloseReason, message: string): void {
    if (!this.forget(conn, reason)) return;
    endWithMessage(conn.socket, encodeFrame(frame('ERROR', undefined, undefined, message)));
  }

  /** Marks a connection gone (the router frees its id and cancels its deadline) and counts the close. False if it already was. */
  private forget(conn: Conn, reason: CloseReason): boolean {
    if (!this.router.disconnected(conn)) return false;
    this.metrics.closed(reason);
    return true;
  }

  private limit(reason: TcpRelayLimitReason, ip: string): void {
    this.limits.report(reason, ip);
  }
}
