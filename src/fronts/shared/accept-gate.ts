// Connection limits of an HTTP listener, applied when a TCP connection is accepted: before the
// HTTP server allocates a parser or reads one byte of it.
import type { Server as HttpServer, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { normalizeAddress } from '../../core/endpoint.js';
import { ConnectionGate, type GateVerdict } from '../../core/limits/connection-gate.js';

/** How long a refused socket may take to read its answer before it is cut. */
const REFUSED_GRACE_MS = 1000;

export interface AcceptGateOptions {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Raw HTTP response written to a refused connection (then closed). */
  readonly busyResponse: string;
  /** Told about every refusal, to count and log it. */
  readonly refused: (ip: string, verdict: Exclude<GateVerdict, 'ok'>) => void;
}

/**
 * Counts every TCP connection of an HTTP server from accept to close, per source (IPv4 address
 * or IPv6 /64) and in total. Over a cap the connection gets `busyResponse` and is closed, and the
 * HTTP server never sees it: `install` puts the gate in front of the server's own 'connection'
 * listeners (the HTTP parser's among them). A WebSocket keeps its slot for its whole life, since
 * its socket is the accepted one.
 */
export class AcceptGate {
  private readonly gate: ConnectionGate;
  private readonly refusedSockets = new Set<Socket>();

  constructor(private readonly options: AcceptGateOptions) {
    this.gate = new ConnectionGate(options.maxConnections, options.maxConnectionsPerIp);
  }

  /** Connections counted now: everything accepted and not yet closed. */
  get admitted(): number {
    return this.gate.size;
  }

  /** Call once, after the server is created and before it listens. */
  install(server: HttpServer): void {
    const downstream = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (socket.destroyed) return;
      const ip = normalizeAddress(socket.remoteAddress ?? '?');
      const verdict = this.gate.admit(ip);
      if (verdict !== 'ok') {
        this.options.refused(ip, verdict);
        this.refuse(socket);
        return;
      }
      socket.once('close', () => this.gate.release(ip));
      for (const listener of downstream) listener.call(server, socket);
    });
  }

  /** Cuts refused sockets still reading their answer (on stop: a server waits for every socket). */
  destroyRefused(): void {
    for (const socket of this.refusedSockets) socket.destroy();
    this.refusedSockets.clear();
  }

  private refuse(socket: Socket): void {
    this.refusedSockets.add(socket);
    socket.on('error', () => undefined);
    // Read and discard the request so closing does not reset the connection under the answer.
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), REFUSED_GRACE_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      this.refusedSockets.delete(socket);
    });
    socket.end(this.options.busyResponse);
  }
}

/**
 * Deadlines of an HTTP listener: a request (or WebSocket upgrade) whose headers are not complete
 * within `handshakeMs` of its connection (or of the previous response, on a kept-alive one) is
 * answered 408 and closed, and so is a connection that sends nothing at all; a whole request
 * (headers and body) gets twice that.
 */
export function httpDeadlines(handshakeMs: number): ServerOptions {
  return {
    headersTimeout: handshakeMs,
    requestTimeout: 2 * handshakeMs,
    keepAliveTimeout: handshakeMs,
    // How often Node looks for connections past those deadlines: they close at most this late.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(handshakeMs / 4))),
  };
}
