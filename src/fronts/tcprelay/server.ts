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
import type { SourceThrottle, ThrottledConnection } from '../../core/limits/source-throttle.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import { BYTES_CODEC } from '../../core/codecs.js';
import type { SharedState } from '../../core/shared-state.js';
import type { LimitReports, LimitSink } from '../../core/limits/reporting.js';
import type { Front } from '../front.js';
import { listenTcp } from '../shared/listen.js';
import { endWithMessage } from '../shared/socket-close.js';
import { createSourceThrottle, type SourceLimits } from '../shared/read-throttle.js';
import { encodeFrame, frame, FrameDecoder } from './codec.js';
import {
  createTcpRelayMetrics,
  malformedReason,
  type CloseReason,
  type TcpRelayLimitReason,
  type TcpRelayMetrics,
} from './metrics.js';
import { TcpRelayRouter, type RelayPeer } from './router.js';
import { ageSeconds, collectRows, type Inspectable } from '../inspection.js';

/** What the tcprelay front reads from the config, picked in one place (index.ts). */
export interface TcpRelayOptions extends SourceLimits {
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
  /** Frame body bytes per second one connection may send on average, and how many at once. */
  readonly byteRate: number;
  readonly byteBurst: number;
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
  /** When it was accepted (the dashboard's age column). */
  readonly openedAt: number;
  /** The key its source's limits count under (sourceKey of the IP): the router's per-source limits too. */
  readonly source: string;
  readonly decoder: FrameDecoder;
  /** Frames this connection may still send. */
  readonly bucket: TokenBucket;
  /** Frame body bytes this connection may still send (charged when a length prefix is read). */
  readonly bytes: TokenBucket;
  /** Where the frame boundaries of the stream are, read ahead of the decoder (see feed). */
  readonly scan: FrameScan;
  /** Told by the source throttle when this connection's source may send again. */
  readonly waiter: ThrottledConnection;
  /** Waiting for its source's debt: not reading, `held` keeps what was read after the frame's length prefix. */
  throttled: boolean;
  held: Buffer | null;
  /** The length of the frame whose prefix was read but that its source has not admitted yet; -1 when none. */
  unadmitted: number;
  /** Senders paused until this connection's send buffer drains. */
  readonly waiting: Set<Conn>;
  /** How many peers' full send buffers hold this connection paused. */
  pausedBy: number;
  /** Set while relaying to a destination far over its send buffer: cut after the frame. */
  cut: boolean;
}

/** Length prefix bytes read of the next frame, and body bytes left of the current one. */
interface FrameScan {
  headerFill: number;
  header: number;
  bodyLeft: number;
  /** A bad length was read: the decoder fails on it, nothing more is scanned. */
  broken: boolean;
}

const HEADER_BYTES = 4;

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
  /** The frames and bytes of each source over all its connections: reading pauses while it is in debt. */
  private readonly throttle: SourceThrottle;

  constructor(
    private readonly options: TcpRelayOptions,
    private readonly deps: TcpRelayDeps,
  ) {
    this.log = deps.logger.child({ front: 'tcprelay' });
    this.limits = deps.limits.forFront<TcpRelayLimitReason>('tcprelay');
    this.gate = new ConnectionGate(options.maxConnections, options.maxConnectionsPerIp);
    this.throttle = createSourceThrottle(options, deps.clock);
    this.metrics = createTcpRelayMetrics(deps.metrics, {
      connections: () => this.conns.size,
      ids: () => this.router.ids,
    });
    const rooms = deps.state.rooms('tcprelay');
    // A dead node's ids are freed (Rocco clients are not told of others leaving).
    deps.state.onNodeGone(async (node) => void (await rooms.purgeNode?.(node)));
    this.router = new TcpRelayRouter({
      metrics: this.metrics,
      rooms,
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

  /** This node's clients by id on the dashboard; an operator may disconnect one. */
  readonly inspection: Inspectable = {
    tables: async (query) => {
      const now = this.deps.clock.now();
      const members = [...this.conns].filter((conn) => conn.state.kind === 'member');
      const { rows, total } = collectRows(
        members,
        (conn) => [conn.state.kind === 'member' ? conn.state.id : '', ageSeconds(now, conn.openedAt)],
        query,
      );
      return [
        {
          id: 'clients',
          title: 'Clients',
          columns: [
            { name: 'id', kind: 'text' },
            { name: 'age', kind: 'age' },
          ],
          rows,
          total,
          action: { name: 'disconnect', label: 'Disconnect' },
        },
      ];
    },
    act: async (action, id) => {
      if (action !== 'disconnect') return 'unknown_action';
      const conn = [...this.conns].find((candidate) => candidate.state.kind === 'member' && candidate.state.id === id);
      if (!conn) return 'not_found';
      this.closeWithError(conn, 'operator', 'Disconnected by the server operator');
      return 'done';
    },
  };

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
      openedAt: this.deps.clock.now(),
      decoder: new FrameDecoder({ maxFrameSize: options.maxFrameSize }),
      bucket: new TokenBucket(options.messageRate, options.messageBurst, this.deps.clock),
      bytes: new TokenBucket(options.byteRate, options.byteBurst, this.deps.clock),
      scan: { headerFill: 0, header: 0, bodyLeft: 0, broken: false },
      waiter: { resume: () => this.unthrottle(conn) },
      throttled: false,
      held: null,
      unadmitted: -1,
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
      this.throttle.forget(conn.source, conn.waiter);
      conn.held = null;
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
    if (conn.throttled) {
      // Read before the pause took effect: kept for after the wait.
      conn.held = conn.held === null ? chunk : Buffer.concat([conn.held, chunk]);
      return;
    }
    this.feed(conn, chunk);
  }

  /**
   * Finds the frames' length prefixes ahead of the decoder. Each frame is charged as soon as its
   * length is known: to the connection's byte budget (over it: ERROR and close) and to its
   * source's (in debt: the connection stops reading and what follows the prefix is held, so a big
   * frame's body is not read, let alone parsed, until the source may send again).
   */
  private feed(conn: Conn, chunk: Buffer): void {
    const { scan } = conn;
    let i = 0;
    while (i < chunk.length && !scan.broken) {
      if (scan.bodyLeft > 0) {
        const take = Math.min(scan.bodyLeft, chunk.length - i);
        scan.bodyLeft -= take;
        i += take;
        continue;
      }
      scan.header = ((scan.header << 8) | (chunk[i] as number)) >>> 0;
      scan.headerFill++;
      i++;
      if (scan.headerFill < HEADER_BYTES) continue;
      const length = scan.header | 0;
      scan.headerFill = 0;
      scan.header = 0;
      // The decoder says what is wrong with a bad length.
      if (length <= 0 || length > this.options.maxFrameSize) {
        scan.broken = true;
        break;
      }
      scan.bodyLeft = length;
      if (!conn.bytes.take(length)) {
        this.decode(conn, chunk.subarray(0, i));
        if (gone(conn)) return;
        this.limit('byte_rate', conn.ip);
        return this.closeWithError(conn, 'byte_rate', 'Too many bytes: slow down');
      }
      if (!this.throttle.admit(conn.source, conn.waiter, length)) {
        this.decode(conn, chunk.subarray(0, i));
        if (gone(conn)) return;
        conn.unadmitted = length;
        conn.held = i < chunk.length ? chunk.subarray(i) : null;
        conn.throttled = true;
        conn.socket.pause();
        this.limit('source_rate', conn.ip);
        return;
      }
    }
    this.decode(conn, chunk);
  }

  /** The source may send again: the frame that waited is charged, what was held is read, then the socket. */
  private unthrottle(conn: Conn): void {
    if (!conn.throttled || gone(conn)) return;
    if (conn.unadmitted >= 0) {
      if (!this.throttle.admit(conn.source, conn.waiter, conn.unadmitted)) return;
      conn.unadmitted = -1;
    }
    const held = conn.held;
    conn.held = null;
    conn.throttled = false;
    if (held !== null) this.feed(conn, held);
    if (!conn.throttled && conn.pausedBy === 0 && !gone(conn)) conn.socket.resume();
  }

  private decode(conn: Conn, chunk: Buffer): void {
    if (gone(conn) || chunk.length === 0) return;
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
      if (--sender.pausedBy === 0 && !gone(sender) && !sender.throttled) sender.socket.resume();
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
