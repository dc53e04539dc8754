import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { normalizeAddress } from '../../core/endpoint.js';
import { encodeCommand, LineDecoder, parseCommand } from './codec.js';
import type { ControlPeer, HostSession, NorayCommands } from './handlers.js';
import type { NorayMetrics } from './metrics.js';

export interface ControlServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxLineLength: number;
  /** A peer that does not read its replies is disconnected past this many unsent bytes. */
  readonly maxPendingBytes: number;
  readonly commands: NorayCommands;
  readonly metrics: NorayMetrics;
  readonly logger: Logger;
}

const CLOSE_GRACE_MS = 2000;

/** The TCP glue of the control channel: bytes in, lines to the handlers, lines out. */
export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: ControlServerOptions) {
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

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    const { commands, metrics, logger } = this.options;
    this.sockets.add(socket);
    metrics.tcpConnections.set(this.sockets.size);
    const remote = `${normalizeAddress(socket.remoteAddress ?? '?')}:${socket.remotePort ?? 0}`;
    const decoder = new LineDecoder(this.options.maxLineLength);
    let closing = false;

    const peer: ControlPeer = {
      remote,
      session: null as HostSession | null,
      send: (line) => {
        if (closing || socket.destroyed) return;
        if (socket.writableLength > this.options.maxPendingBytes) {
          metrics.connectionsClosed.inc({ reason: 'slow_reader' });
          logger.info({ remote }, 'control connection not reading its replies, closing');
          socket.destroy();
          return;
        }
        socket.write(line);
      },
    };

    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      const result = decoder.push(chunk);
      for (const line of result.lines) {
        if (closing || socket.destroyed) break;
        commands.handle(peer, parseCommand(line));
      }
      if (!result.ok) {
        closing = true;
        metrics.connectionsClosed.inc({ reason: 'line_too_long' });
        logger.info({ remote }, 'control line too long, closing');
        // Keep reading (and discarding) until the peer closes, so the error line is not lost to a reset.
        socket.end(encodeCommand('error', `line too long (max ${this.options.maxLineLength} bytes)`));
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      }
    });
    socket.on('error', (error) => logger.debug({ remote, err: error.message }, 'control socket error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      metrics.tcpConnections.set(this.sockets.size);
      commands.disconnected(peer);
    });
  }
}
