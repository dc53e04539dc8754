import { createServer, type Server, type Socket } from 'node:net';
import { Counter, Gauge } from 'prom-client';
import type { Timer } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { randomToken } from '../../core/ids.js';
import { ConnectionGate } from '../../core/limits/connection-gate.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import { Room, type Member } from '../../core/rooms.js';
import type { Front, FrontDeps } from '../front.js';
import { encodeFrame, frame, FrameDecoder, type DecodeErrorCode, type Frame } from './codec.js';
import { endWithMessage } from '../shared/socket-close.js';

interface Conn {
  readonly socket: Socket;
  /** Source address, as counted by the connection gate and named in limit reports. */
  readonly ip: string;
  readonly decoder: FrameDecoder;
  /** Frames this connection may still send. */
  readonly bucket: TokenBucket;
  /** Closes the connection if no INIT has succeeded by then; null after the first INIT. */
  loginTimer: Timer | null;
  /** This connection's current id in the directory; null before INIT and after CLOSE. */
  member: Member<Buffer> | null;
  gone: boolean;
}

type CloseReason =
  | 'closed'
  | 'error'
  | 'slow'
  | 'shutdown'
  | 'login_timeout'
  | 'message_rate'
  | `malformed_${Lowercase<DecodeErrorCode>}`;

/** How long a connection closed with an ERROR frame may take to read it before it is cut. */
const BUSY_FRAME = encodeFrame(frame('ERROR', undefined, undefined, 'Server busy: too many connections'));
type Rejection = 'not_initialized' | 'no_destination' | 'unknown_destination' | 'id_taken';

export function createTcpRelayFront(deps: FrontDeps): Front {
  return new TcpRelayFront(deps);
}

class TcpRelayFront implements Front {
  readonly name = 'tcprelay';
  private readonly log;
  /** Every id is unique across the relay: one flat room with no owner. */
  private readonly directory = new Room<Buffer>('tcprelay', null, { uniqueIds: true });
  private readonly conns = new Set<Conn>();
  /** Counts every accepted socket until it closes, refused ones not included. */
  private readonly gate: ConnectionGate;
  /** Refused sockets still flushing their busy ERROR frame. */
  private readonly refused = new Set<Socket>();
  private readonly maxFrame: number;
  private readonly sendLimit: number;
  private server: Server | null = null;
  private boundPort = 0;
  private stopped = false;
  private readonly relayed;
  private readonly rejected;
  private readonly closes;

  constructor(private readonly deps: FrontDeps) {
    this.log = deps.logger.child({ front: 'tcprelay' });
    this.maxFrame = deps.config.tcprelayMaxFrameSize;
    this.sendLimit = deps.config.tcprelaySendBuffer;
    this.gate = new ConnectionGate(deps.config.maxConnections, deps.config.maxConnectionsPerIp);
    const registers = [deps.metrics];
    const conns = this.conns;
    const directory = this.directory;
    new Gauge({
      name: 'noray_tcprelay_connections',
      help: 'Open TCP relay connections',
      registers,
      collect() {
        this.set(conns.size);
      },
    });
    new Gauge({
      name: 'noray_tcprelay_ids',
      help: 'Client ids currently initialized on the TCP relay',
      registers,
      collect() {
        this.set(directory.size);
      },
    });
    const relayed = new Counter({
      name: 'noray_tcprelay_frames_relayed_total',
      help: 'Frames delivered to their destination, by payloadType',
      labelNames: ['type'] as const,
      registers,
    });
    this.relayed = { MESSAGE: relayed.labels('MESSAGE'), ERROR: relayed.labels('ERROR') };
    this.rejected = new Counter({
      name: 'noray_tcprelay_frames_rejected_total',
      help: 'Frames answered with an ERROR instead of being delivered, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
    this.closes = new Counter({
      name: 'noray_tcprelay_closes_total',
      help: 'Connections closed, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
  }

  async start(): Promise<void> {
    const { tcprelayHost: host, tcprelayPort: port } = this.deps.config;
    if (port === null) throw new Error('tcprelay is switched off');
    const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) =>
      this.accept(socket),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn({ err }, 'tcprelay listener error'));
    const address = server.address();
    this.boundPort = typeof address === 'object' && address !== null ? address.port : port;
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
    return { connections: this.conns.size, ids: this.directory.size, admitted: this.gate.size };
  }

  private accept(socket: Socket): void {
    if (this.stopped || socket.destroyed) return void socket.destroy();
    const { config, clock, limits } = this.deps;
    const ip = normalizeAddress(socket.remoteAddress ?? '?');
    const verdict = this.gate.admit(ip);
    if (verdict !== 'ok') {
      limits.report('tcprelay', verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip);
      return this.refuse(socket);
    }
    const conn: Conn = {
      socket,
      ip,
      decoder: new FrameDecoder({ maxFrameSize: this.maxFrame }),
      bucket: new TokenBucket(config.messageRate, config.messageBurst, clock),
      loginTimer: null,
      member: null,
      gone: false,
    };
    this.conns.add(conn);
    conn.loginTimer = clock.setTimeout(() => {
      conn.loginTimer = null;
      limits.report('tcprelay', 'login_timeout', ip);
      this.closeWithError(conn, 'login_timeout', 'Login timeout: no INIT in time');
    }, config.loginTimeout);
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', () => this.drop(conn, 'error'));
    socket.on('close', () => {
      this.drop(conn, 'closed');
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
    if (conn.gone) return;
    const { frames, error } = conn.decoder.push(chunk);
    for (const received of frames) {
      if (conn.gone) return;
      if (!conn.bucket.take()) {
        this.deps.limits.report('tcprelay', 'message_rate', conn.ip);
        return this.closeWithError(conn, 'message_rate', 'Too many frames: slow down');
      }
      this.handle(conn, received);
    }
    if (error !== null) {
      this.log.debug({ code: error.code }, 'malformed frame');
      if (error.code === 'FRAME_TOO_LARGE') this.deps.limits.report('tcprelay', 'frame_too_large', conn.ip);
      this.drop(conn, `malformed_${error.code.toLowerCase() as Lowercase<DecodeErrorCode>}`);
    }
  }

  private handle(conn: Conn, received: Frame): void {
    switch (received.payloadType) {
      case 'INIT':
        return this.init(conn, received.source);
      case 'CLOSE':
        if (conn.member !== null) this.directory.leave(conn.member);
        conn.member = null;
        return;
      case 'MESSAGE':
      case 'ERROR':
        return this.relay(conn, received);
    }
  }

  private init(conn: Conn, requested: string | undefined): void {
    // An empty source is treated like no source: the relay picks the id.
    const wanted = requested === '' ? undefined : requested;
    if (wanted !== undefined && conn.member?.id === wanted) {
      return this.write(conn, encodeFrame(frame('INIT', undefined, wanted)));
    }
    if (wanted !== undefined && this.directory.hasId(wanted)) {
      this.rejected.inc({ reason: 'id_taken' });
      return this.reply(conn, wanted, `ClientId: ${wanted} is already initialized`);
    }
    let id = wanted;
    while (id === undefined || this.directory.hasId(id)) id = randomToken();
    const member: Member<Buffer> = { id, deliver: (message) => this.write(conn, message) };
    if (conn.member !== null) this.directory.leave(conn.member);
    conn.member = member;
    this.directory.join(member);
    conn.loginTimer?.cancel();
    conn.loginTimer = null;
    this.write(conn, encodeFrame(frame('INIT', undefined, id)));
  }

  private relay(conn: Conn, received: Frame): void {
    const sender = conn.member;
    if (sender === null) return this.reject(conn, 'not_initialized', undefined, 'Not initialized: send INIT first');
    const destination = received.destination;
    if (destination === undefined) return this.reject(conn, 'no_destination', sender.id, 'Destination is missing');
    // The server stamps the source: nobody can pose as another id.
    const out = encodeFrame(frame(received.payloadType, sender.id, destination, received.payload));
    if (this.directory.toId(destination, out, sender) === 0) {
      return this.reject(conn, 'unknown_destination', sender.id, `ClientId: ${destination} is not initialized`);
    }
    this.relayed[received.payloadType as 'MESSAGE' | 'ERROR'].inc();
  }

  private reject(conn: Conn, reason: Rejection, destination: string | undefined, message: string): void {
    this.rejected.inc({ reason });
    this.reply(conn, destination, message);
  }

  private reply(conn: Conn, destination: string | undefined, message: string): void {
    this.write(conn, encodeFrame(frame('ERROR', undefined, destination, message)));
  }

  private write(conn: Conn, data: Buffer): void {
    if (conn.gone) return;
    if (conn.socket.writableLength > this.sendLimit) {
      this.deps.limits.report('tcprelay', 'slow_reader', conn.ip);
      return this.drop(conn, 'slow');
    }
    conn.socket.write(data);
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

  /** Marks a connection gone: frees its id, cancels its login deadline, counts the close. False if it already was. */
  private forget(conn: Conn, reason: CloseReason): boolean {
    conn.loginTimer?.cancel();
    conn.loginTimer = null;
    if (conn.gone) return false;
    conn.gone = true;
    if (conn.member !== null) this.directory.leave(conn.member);
    conn.member = null;
    this.closes.inc({ reason });
    return true;
  }
}
