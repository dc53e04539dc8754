import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { AddressPolicy } from '../../core/address-policy.js';
import type { Endpoint } from '../../core/endpoint.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { ConnectionGate, type GateVerdict } from '../../core/limits/connection-gate.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import { maskSecret } from '../../core/ids.js';
import {
  LobbyService,
  type ChatMessage,
  type ClientId,
  type LobbyError,
  type LobbyEvents,
  type LobbyResult,
  type MediationOutcome,
} from '../../core/lobbies/index.js';
import type { Front, FrontDeps } from '../front.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import { createLobbyMetrics, type InvalidReason, type LobbyMetrics, type Transport } from './metrics.js';
import { openApiDocument } from './openapi.js';
import {
  ABORT_REASONS,
  CREATE_LOBBY_REFUSALS,
  JOIN_LOBBY_REFUSALS,
  refusalText,
  START_MEDIATION_REFUSALS,
  TEXTS,
  type Refusals,
} from './errors.js';
import { chatPayload, createLobbyBody, describeIssues, joinLobbyBody, startMediationBody, tokenPayload } from './schemas.js';

export const HTTP_BODY_LIMIT = 16 * 1024;
export const WS_MAX_PAYLOAD = 64 * 1024;
/** Larger datagrams are ignored: a `ptpMediation_connect` with a UUID token is about 80 bytes. */
export const UDP_MAX_DATAGRAM = 2048;
/** A client that lets this much outgoing data pile up is cut off rather than buffered forever. */
const WS_MAX_BUFFERED = 4 * 1024 * 1024;

export const MALFORMED_JSON_ERROR = TEXTS.malformedJson;
export const RATE_LIMITED_ERROR = TEXTS.rateLimited;
/** WebSocket close code for a client over its message rate (policy violation). */
export const CLOSE_POLICY = 1008;

const BUSY_BODY = 'Server busy: too many connections\n';
/** The answer to a WebSocket upgrade over a connection limit, instead of the 101. */
const BUSY_RESPONSE =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
  `Access-Control-Allow-Origin: *\r\nContent-Length: ${BUSY_BODY.length}\r\n\r\n${BUSY_BODY}`;

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

/**
 * Orion-compatible lobbies: HTTP for requests that need an answer, a WebSocket per client for
 * events, a UDP port to observe each member's public address during mediation.
 *
 * With the HTTP port off the front binds nothing, even if the UDP port is set: clients get their
 * token over the WebSocket, so the UDP port alone could serve no one. With the UDP port off,
 * lobbies and chat work and `ptp/start` is refused with 409.
 */
export class LobbyFront implements Front {
  readonly name = 'lobby';
  private readonly log: Logger;
  private readonly service: LobbyService;
  private readonly metrics: LobbyMetrics;
  private readonly sockets = new Map<ClientId, WebSocket>();
  private http: FastifyInstance | null = null;
  private wss: WebSocketServer | null = null;
  private udp: UdpSocket | null = null;
  private httpPort: number | null = null;
  private udpPort: number | null = null;
  private stopping: Promise<void> | null = null;
  /** Counts every WebSocket from its upgrade request until its socket closes. */
  private readonly gate: ConnectionGate;
  /** HTTP requests per source address. */
  private readonly httpRate: SourceRateLimiter;
  private readonly addressPolicy: AddressPolicy;

  constructor(private readonly deps: FrontDeps) {
    const { config } = deps;
    this.log = deps.logger.child({ front: 'lobby' });
    this.gate = new ConnectionGate(config.maxConnections, config.maxConnectionsPerIp);
    this.httpRate = new SourceRateLimiter(config.messageRate, config.messageBurst, deps.clock);
    this.addressPolicy = new AddressPolicy(config.denyPrivatePeers);
    this.service = new LobbyService({
      clock: deps.clock,
      events: this.events(),
      timing: {
        serverConnectTimeoutMs: config.lobbyServerConnectTimeout,
        connectRequestIntervalMs: config.lobbyConnectRequestInterval,
        connectTimeoutMs: config.lobbyConnectTimeout,
      },
      mediationAvailable: config.lobbyUdpPort !== null,
      maxLobbies: config.maxLobbies,
    });
    this.metrics = createLobbyMetrics(deps.metrics, () => this.service.counts());
  }

  async start(): Promise<void> {
    const { lobbyHost, lobbyHttpPort, lobbyUdpPort } = this.deps.config;
    if (lobbyHttpPort === null) {
      this.log.warn('lobby HTTP port is off: the lobby front serves nothing (the UDP port alone is useless)');
      return;
    }
    if (lobbyUdpPort !== null) this.udpPort = await this.bindUdp(lobbyHost, lobbyUdpPort);
    this.http = this.buildHttp();
    this.wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD });
    this.http.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(request, socket, head),
    );
    await this.http.listen({ host: lobbyHost, port: lobbyHttpPort });
    const address = this.http.server.address();
    this.httpPort = typeof address === 'object' && address ? address.port : lobbyHttpPort;
    this.log.info({ http: this.httpPort, udp: this.udpPort }, 'lobby front listening');
  }

  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  ports(): Record<string, number> {
    const ports: Record<string, number> = {};
    if (this.httpPort !== null) ports.http = this.httpPort;
    if (this.udpPort !== null) ports.udp = this.udpPort;
    return ports;
  }

  stats(): Record<string, number> {
    return { ...this.service.counts(), connections: this.sockets.size, admitted: this.gate.size };
  }

  private async close(): Promise<void> {
    this.service.dispose();
    const sockets = [...this.sockets.values()];
    this.sockets.clear();
    await goAway(sockets);
    this.wss?.close();
    const udp = this.udp;
    this.udp = null;
    await Promise.allSettled([
      this.http?.close(),
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
    ]);
  }

  // ---- HTTP -------------------------------------------------------------------------------

  private buildHttp(): FastifyInstance {
    // forceCloseConnections: stop() must not wait for a client that sent half a request and went quiet.
    const app = Fastify({ logger: false, bodyLimit: HTTP_BODY_LIMIT, forceCloseConnections: true });

    // Orion reads every body as JSON whatever its content type; malformed JSON is a 400 here (Orion: 500).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(Object.assign(new Error(MALFORMED_JSON_ERROR), { statusCode: 400 }), undefined);
      }
    });

    app.addHook('onRequest', (_request, reply, done) => {
      reply.header('access-control-allow-origin', '*');
      done();
    });
    // After the CORS header, so that a browser client can read the 429.
    app.addHook('onRequest', (request, reply, done) => {
      const ip = normalizeAddress(request.socket.remoteAddress ?? '?');
      if (this.httpRate.take(ip)) return done();
      this.deps.limits.report('lobby', 'http_rate', ip);
      void reply.code(429).header('retry-after', '1').send({ errors: [RATE_LIMITED_ERROR] });
    });
    app.setErrorHandler((error: { statusCode?: number; message?: string }, _request, reply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (status >= 500) this.log.error({ err: error }, 'lobby HTTP handler failed');
      else this.metrics.invalidMessage('http', 'malformed');
      return reply.code(status).send({ errors: [status >= 500 ? 'Internal server error.' : String(error.message)] });
    });
    app.setNotFoundHandler((_request, reply) => reply.code(404).send({ errors: ['Not found.'] }));

    app.options('*', (request, reply) => {
      const requested = request.headers['access-control-request-headers'];
      return reply
        .code(200)
        .header('access-control-allow-methods', 'GET, POST, OPTIONS')
        .header('access-control-allow-headers', typeof requested === 'string' && requested ? requested : 'Content-Type')
        .header('access-control-max-age', '86400')
        .send();
    });

    app.get('/ping', (_request, reply) => reply.code(200).type('text/plain; charset=utf-8').send('pong'));
    app.get('/openapi.json', (_request, reply) => reply.code(200).send(openApiDocument));
    app.get('/lobbies', (_request, reply) => reply.code(200).send({ lobbies: this.service.publicLobbies() }));

    app.post('/lobbies', (request, reply) => {
      const body = createLobbyBody.safeParse(request.body);
      if (!body.success) return this.badRequest(reply, describeIssues(body.error));
      const { token, ...lobby } = body.data;
      const result = this.service.createLobby(token, lobby);
      if (result.ok) this.log.info({ lobbyId: result.value.lobbyId, token: maskSecret(token) }, 'lobby created');
      else if (result.error === 'tooManyLobbies') {
        this.deps.limits.report('lobby', 'max_lobbies', normalizeAddress(request.socket.remoteAddress ?? '?'));
      }
      return this.respond(reply, result, CREATE_LOBBY_REFUSALS, '', 201, (value) => value);
    });

    app.post<{ Params: { id: string } }>('/lobbies/:id/join', (request, reply) => {
      const body = joinLobbyBody.safeParse(request.body);
      if (!body.success) return this.badRequest(reply, describeIssues(body.error));
      const result = this.service.joinLobby(body.data.token, request.params.id, body.data.peerName);
      return this.respond(reply, result, JOIN_LOBBY_REFUSALS, request.params.id, 200, (value) => value);
    });

    app.post<{ Params: { id: string } }>('/lobbies/:id/ptp/start', (request, reply) => {
      const body = startMediationBody.safeParse(request.body);
      if (!body.success) return this.badRequest(reply, describeIssues(body.error));
      const result = this.service.startMediation(body.data.token, request.params.id);
      return this.respond(reply, result, START_MEDIATION_REFUSALS, request.params.id, 200, () => undefined);
    });

    return app;
  }

  private badRequest(reply: FastifyReply, errors: string[]): FastifyReply {
    this.metrics.invalidMessage('http', 'invalid_payload');
    return reply.code(400).send({ errors });
  }

  private respond<T, E extends LobbyError>(
    reply: FastifyReply,
    result: LobbyResult<T, E>,
    refusals: Refusals<E>,
    lobbyId: string,
    status: number,
    render: (value: T) => unknown,
  ): FastifyReply {
    if (result.ok) {
      const body = render(result.value);
      return body === undefined ? reply.code(status).send() : reply.code(status).send(body);
    }
    const refusal = refusals[result.error];
    return reply.code(refusal.status).send({ errors: [refusalText(refusal, lobbyId)] });
  }

  // ---- WebSocket --------------------------------------------------------------------------

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const wss = this.wss;
    // A socket already closed would never emit the 'close' that releases its gate slot.
    if (!wss || this.stopping || socket.destroyed) {
      socket.destroy();
      return;
    }
    const ip = normalizeAddress(request.socket.remoteAddress ?? '?');
    const verdict = this.gate.admit(ip);
    if (verdict !== 'ok') return this.refuseUpgrade(socket, ip, verdict);
    // Released on whatever ends the socket: a failed handshake, any close of the client, stop().
    socket.once('close', () => this.gate.release(ip));
    wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws, ip));
  }

  /** Over a connection limit: an HTTP 503 instead of the upgrade, then close. */
  private refuseUpgrade(socket: Duplex, ip: string, verdict: Exclude<GateVerdict, 'ok'>): void {
    this.deps.limits.report('lobby', verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip);
    if (socket.writable) socket.end(BUSY_RESPONSE, () => socket.destroy());
    else socket.destroy();
  }

  private onConnection(ws: WebSocket, ip: string): void {
    if (this.stopping) {
      ws.terminate();
      return;
    }
    const { id, token } = this.service.registerClient();
    this.sockets.set(id, ws);
    const bucket = new TokenBucket(this.deps.config.messageRate, this.deps.config.messageBurst, this.deps.clock);
    ws.on('message', (data: RawData) => {
      // Frames already on the wire when the socket started closing are dropped.
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!bucket.take()) {
        this.deps.limits.report('lobby', 'message_rate', ip);
        ws.close(CLOSE_POLICY, 'message rate exceeded');
        return;
      }
      this.onWsMessage(data);
    });
    ws.on('error', (error) => this.log.debug({ client: id, err: error.message }, 'lobby WebSocket error'));
    ws.on('close', () => {
      this.sockets.delete(id);
      this.service.removeClient(id);
      this.log.debug({ client: id }, 'lobby client disconnected');
    });
    this.log.debug({ client: id, token: maskSecret(token) }, 'lobby client registered');
    this.send(id, SERVER_METHODS.clientRegistered, { token });
  }

  private onWsMessage(data: RawData): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const message = decodeMessage(bytes, { maxBytes: WS_MAX_PAYLOAD });
    if (!message.ok) return this.invalid('ws', 'malformed');
    switch (message.method) {
      case CLIENT_METHODS.chatSend: {
        const chat = chatPayload.safeParse(message.payload);
        if (!chat.success) return this.invalid('ws', 'invalid_payload');
        if (!this.service.sendChat(chat.data.token, chat.data.lobbyId, chat.data.message)) this.invalid('ws', 'rejected');
        return;
      }
      case CLIENT_METHODS.peersConnectionSuccess: {
        const success = tokenPayload.safeParse(message.payload);
        if (!success.success) return this.invalid('ws', 'invalid_payload');
        if (!this.service.reportPeersConnected(success.data.token)) this.invalid('ws', 'rejected');
        return;
      }
      default:
        return this.invalid('ws', 'unknown_method');
    }
  }

  private send(to: ClientId, method: string, payload: object): void {
    const ws = this.sockets.get(to);
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > WS_MAX_BUFFERED) {
      this.log.warn({ client: to }, 'lobby client does not read its WebSocket: disconnected');
      ws.terminate();
      return;
    }
    ws.send(encodeMessage(method, payload));
  }

  // ---- UDP --------------------------------------------------------------------------------

  private async bindUdp(host: string, port: number): Promise<number> {
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (error) => this.log.warn({ err: error.message }, 'lobby UDP socket error'));
    udp.on('message', (datagram, remote) => this.onDatagram(datagram, remote));
    this.udp = udp;
    return udp.address().port;
  }

  /** Never answers: a spoofed source must not be able to make this port send anything (no amplification). */
  private onDatagram(datagram: Buffer, remote: RemoteInfo): void {
    const address = normalizeAddress(remote.address);
    if (!this.addressPolicy.allows(address)) return this.deps.limits.report('lobby', 'denied_peer', address);
    if (datagram.length > UDP_MAX_DATAGRAM) return this.invalid('udp', 'malformed');
    const message = decodeMessage(datagram, { maxBytes: UDP_MAX_DATAGRAM });
    if (!message.ok) return this.invalid('udp', 'malformed');
    if (message.method !== CLIENT_METHODS.mediationConnect) return this.invalid('udp', 'unknown_method');
    const connect = tokenPayload.safeParse(message.payload);
    if (!connect.success) return this.invalid('udp', 'invalid_payload');
    const endpoint: Endpoint = { address, port: remote.port };
    if (!this.service.recordUdpAddress(connect.data.token, endpoint)) this.invalid('udp', 'rejected');
  }

  private invalid(transport: Transport, reason: InvalidReason): void {
    this.metrics.invalidMessage(transport, reason);
  }

  // ---- core events -> wire ----------------------------------------------------------------

  private events(): LobbyEvents {
    return {
      peerJoined: (to, lobbyId, peerName) => this.send(to, SERVER_METHODS.peerConnect, { lobbyId, peerName }),
      peerLeft: (to, lobbyId, peerName) => this.send(to, SERVER_METHODS.peerDisconnect, { lobbyId, peerName }),
      lobbyClosed: (to, lobbyId, lobbyName) => this.send(to, SERVER_METHODS.lobbyClosed, { lobbyId, lobbyName }),
      chatReceived: (to, lobbyId, message: ChatMessage) =>
        this.send(to, SERVER_METHODS.chatReceived, {
          lobbyId,
          message: { timestamp: message.timestamp, senderName: message.senderName, message: message.message },
        }),
      udpAddressRequested: (to) => this.send(to, SERVER_METHODS.mediationSend, { port: this.udpPort }),
      peersConnectionStart: (to, peers) =>
        this.send(to, SERVER_METHODS.peersConnectionStart, {
          peers: peers.map((peer) => ({ ip: peer.address, port: peer.port })),
        }),
      mediationSucceeded: (to) => this.send(to, SERVER_METHODS.mediationSuccess, {}),
      mediationAborted: (to, cause) => this.send(to, SERVER_METHODS.mediationAborted, { abortReason: ABORT_REASONS[cause] }),
      mediationStarted: (lobbyId, members) => {
        this.metrics.mediationStarted();
        this.log.info({ lobbyId, members }, 'mediation started');
      },
      mediationEnded: (lobbyId, outcome: MediationOutcome) => {
        this.metrics.mediationEnded(outcome);
        this.log.info({ lobbyId, outcome }, 'mediation ended');
      },
    };
  }
}

/** Close handshakes get this long on shutdown; then the remaining sockets are cut. */
const SHUTDOWN_GRACE_MS = 1000;
const CLOSE_GOING_AWAY = 1001;

/** Sends every WebSocket a close frame (1001 going away), waits a moment for the handshakes, cuts the rest. */
async function goAway(sockets: readonly WebSocket[]): Promise<void> {
  if (sockets.length === 0) return;
  const closed = sockets.map((ws) =>
    ws.readyState === WebSocket.CLOSED ? undefined : new Promise<void>((resolve) => ws.once('close', () => resolve())),
  );
  for (const ws of sockets) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(closed), new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
  clearTimeout(timer);
  for (const ws of sockets) ws.terminate();
}

export function createLobbyFront(deps: FrontDeps): Front {
  return new LobbyFront(deps);
}
