import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../../core/clock.js';
import type { AttachableDelivery } from '../../core/delivery.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { ConnectionGate } from '../../core/limits/connection-gate.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { sourceKey } from '../../core/limits/source-key.js';
import type { SourceThrottle } from '../../core/limits/source-throttle.js';
import { encodeCommand, LineDecoder, parseCommand } from './codec.js';
import type { ControlPeer, HostSession, NorayCommands } from './handlers.js';
import type { NorayLimitReason, NorayMetrics } from './metrics.js';
import { listenTcp } from '../shared/listen.js';
import { endWithMessage } from '../shared/socket-close.js';
import { ThrottledReader } from '../shared/read-throttle.js';

/** Corked reply bytes that make the socket flush before the end of a chunk's replies. */
const CORK_FLUSH_BYTES = 16 * 1024;

export interface ControlServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxLineLength: number;
  /** A peer that does not read its replies is disconnected past this many unsent bytes. */
  readonly maxPendingBytes: number;
  readonly commands: NorayCommands;
  /** Where sessions' lines are delivered by connection id; each connection attaches itself. */
  readonly delivery: AttachableDelivery<string>;
  /** Makes the id of each connection: unique cluster-wide, naming this node. */
  readonly newConnectionId: () => string;
  readonly metrics: NorayMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly limits: LimitSink<NorayLimitReason>;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly messageRate: number;
  readonly messageBurst: number;
  /** A connection that has not sent register-host by then is closed; after it, never. */
  readonly loginTimeoutMs: number;
  /** The lines (and their bytes) of each source over all its connections: reading pauses while it is in debt. */
  readonly throttle: SourceThrottle;
}


/** The TCP glue of the control channel: bytes in, lines to the handlers, lines out. */
export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Refused connections still reading their error line: cut at close() instead of waiting out their grace. */
  private readonly refused = new Set<Socket>();
  private readonly gate: ConnectionGate;
  private readonly failureLog = new ThrottledLog();
  /** Ends a connection by its id, telling it why (the dashboard's "end session"). */
  private readonly enders = new Map<string, () => void>();

  constructor(private readonly options: ControlServerOptions) {
    this.gate = new ConnectionGate(options.maxConnections, options.maxConnectionsPerIp);
    this.server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (socket) =>
      this.accept(socket),
    );
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  get connections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    await listenTcp(this.server, this.options.port, this.options.host, (error) =>
      this.options.logger.warn({ err: error.message }, 'control listener error'),
    );
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    for (const socket of this.refused) socket.destroy();
    await closed;
  }

  /**
   * Closes the connection with this id after an `error` line saying the operator ended it; its
   * session ends as on any disconnect. False when no connection here has the id.
   */
  disconnect(connectionId: string): boolean {
    const end = this.enders.get(connectionId);
    end?.();
    return end !== undefined;
  }

  private accept(socket: Socket): void {
    const { commands, metrics, logger, limits } = this.options;
    const ip = normalizeAddress(socket.remoteAddress ?? '?');
    const remote = `${ip}:${socket.remotePort ?? 0}`;
    socket.on('error', (error) => logger.debug({ remote, err: error.message }, 'control socket error'));
    const verdict = this.gate.admit(ip);
    if (verdict !== 'ok') {
      limits.report(verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip);
      this.refused.add(socket);
      socket.once('close', () => this.refused.delete(socket));
      endWithMessage(socket, encodeCommand('error', 'server busy: too many connections'));
      return;
    }
    this.sockets.add(socket);
    metrics.tcpConnections.set(this.sockets.size);
    const decoder = new LineDecoder(this.options.maxLineLength);
    const bucket = new TokenBucket(this.options.messageRate, this.options.messageBurst, this.options.clock);
    /** No more input is read (set at once when a limit bites or the line framing breaks). */
    let closing = false;
    /** Output is closed: nothing more goes out. */
    let ended = false;
    let loginTimer: Timer | null = null;
    /** Replies are corked while the lines of one chunk are handled: one write for all of them. */
    let corked = false;

    // Commands of one connection run one after another, so replies keep the order of requests.
    let queue: Promise<void> = Promise.resolve();
    const enqueue = (task: () => Promise<void> | void) => {
      // Commands answer their own failures (NorayCommands: `error internal error`); what fails
      // here is connection upkeep, logged once a minute (a cluster's Redis down fails all of it).
      queue = queue.then(task).catch((error: unknown) => {
        this.failureLog.report((skipped) => logger.error({ err: error, remote, skipped }, 'control task failed'));
      });
    };

    /** Stops reading at once; after the replies to earlier commands, says why in one error line and closes. */
    const closeWithError = (reason: string, message: string) => {
      if (closing) return;
      closing = true;
      enqueue(() => {
        if (ended) return;
        ended = true;
        metrics.connectionsClosed.inc({ reason });
        endWithMessage(socket, encodeCommand('error', message));
      });
    };

    const peer: ControlPeer = {
      id: this.options.newConnectionId(),
      remote,
      session: null as HostSession | null,
      send: (line) => {
        if (ended || socket.destroyed) return;
        if (socket.writableLength > this.options.maxPendingBytes) {
          metrics.connectionsClosed.inc({ reason: 'slow_reader' });
          limits.report('slow_reader', ip);
          closing = true;
          ended = true;
          socket.destroy();
          return;
        }
        socket.write(line);
        if (corked && socket.writableLength >= CORK_FLUSH_BYTES) {
          socket.uncork();
          socket.cork();
        }
      },
    };

    // Lines others caused (connect notifications) never get this connection closed as a slow
    // reader: past the pending limit they are dropped and counted; only its own replies close it.
    const inbox = (line: string) => {
      if (!ended && !socket.destroyed && socket.writableLength > this.options.maxPendingBytes) {
        limits.report('notification_dropped', ip);
        return;
      }
      peer.send(line);
    };
    this.options.delivery.attach(peer.id, inbox);
    this.enders.set(peer.id, () => closeWithError('operator', 'session ended by the server operator'));

    loginTimer = this.options.clock.setTimeout(() => {
      if (peer.session) return;
      limits.report('login_timeout', ip);
      closeWithError('login_timeout', 'no register-host in time');
    }, this.options.loginTimeoutMs);

    /** Handles a line admitted by the source's budget (the connection's own rate first, as always). */
    const handleLine = (line: string) => {
      if (closing || socket.destroyed) return;
      if (!bucket.take()) {
        limits.report('message_rate', ip);
        closeWithError('message_rate', 'too many commands, slow down');
        return;
      }
      const command = parseCommand(line);
      enqueue(async () => {
        await commands.handle(peer, command);
        if (peer.session && loginTimer) {
          loginTimer.cancel();
          loginTimer = null;
        }
      });
    };
    /** Runs `handle` with the replies it causes corked; they go out after the last of its commands. */
    const withCork = (handle: () => void) => {
      if (corked || socket.destroyed) return handle();
      corked = true;
      socket.cork();
      try {
        handle();
      } finally {
        enqueue(() => {
          corked = false;
          if (!socket.destroyed) socket.uncork();
        });
      }
    };
    const reader = new ThrottledReader<string>(this.options.throttle, sourceKey(ip), {
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      throttled: () => limits.report('source_rate', ip),
      size: (line) => Buffer.byteLength(line) + 1,
      handle: handleLine,
      open: () => !closing && !socket.destroyed,
      batch: withCork,
    });

    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      const result = decoder.push(chunk);
      withCork(() => {
        for (const line of result.lines) {
          if (closing || socket.destroyed) break;
          reader.push(line);
        }
      });
      if (!result.ok) {
        limits.report('line_too_long', ip);
        closeWithError('line_too_long', `line too long (max ${this.options.maxLineLength} bytes)`);
      }
    });
    socket.on('close', () => {
      loginTimer?.cancel();
      reader.close();
      this.gate.release(ip);
      this.sockets.delete(socket);
      metrics.tcpConnections.set(this.sockets.size);
      this.options.delivery.detach(peer.id, inbox);
      this.enders.delete(peer.id);
      enqueue(() => commands.disconnected(peer));
    });
  }
}
