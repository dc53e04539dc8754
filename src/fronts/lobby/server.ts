import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AddressPolicy } from '../../core/address-policy.js';
import { jsonMessageCodec } from '../../core/codecs.js';
import { LobbyService, type LobbyEvent, type MediationTiming } from '../../core/lobbies/index.js';
import type { Front, FrontDeps } from '../front.js';
import { lobbyHttp } from './http.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { createLobbyMetrics, type LobbyLimitReason, type LobbyMetrics } from './metrics.js';
import { HTTP_BODY_LIMIT } from './routes.js';
import { LobbyUdp } from './udp.js';
import { BUSY_RESPONSE, LobbyWebSockets, type LobbyWebSocketOptions } from './websocket.js';
import { LobbyWire, mediationObserver } from './wire.js';
import { AcceptGate, httpDeadlines } from '../shared/accept-gate.js';
import { createListener, type TlsContext } from '../shared/tls.js';
import { collectRows, type Inspectable } from '../inspection.js';

/** What the lobby front is configured with (picked from the app config in index.ts). */
export interface LobbyOptions extends LobbyWebSocketOptions {
  /** Listen address of HTTP, WebSocket and UDP alike. */
  readonly host: string;
  /** HTTP + WebSocket port (0: any free one); null: the front binds nothing. */
  readonly httpPort: number | null;
  /** Mediation's UDP port (0: any free one); null: lobbies and chat only, ptp/start answers 409. */
  readonly udpPort: number | null;
  readonly timing: MediationTiming;
  /** Lobbies at once. The connection limits' message rate also bounds HTTP requests per source address. */
  readonly maxLobbies: number;
  /** Ignore mediation packets from private, loopback and link-local sources. */
  readonly denyPrivatePeers: boolean;
  /** NORAY_TLS_CERT/KEY: HTTPS and WSS instead of HTTP and WS (absent or null: plain). */
  readonly tls?: TlsContext | null;
}

/** Everything else the front is built with: the app's shared services. */
export type LobbyDeps = Omit<FrontDeps, 'config'>;

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * Orion-compatible lobbies: HTTP for requests that need an answer, a WebSocket per client for
 * events, a UDP port to observe each member's public address during mediation. This class only
 * composes the parts (wire.ts, http.ts, websocket.ts, udp.ts) and orders their start and stop.
 *
 * With the HTTP port off the front binds nothing, even if the UDP port is set: clients get their
 * token over the WebSocket, so the UDP port alone could serve no one.
 */
export class LobbyFront implements Front {
  readonly name = 'lobby';
  private readonly log: Logger;
  private readonly metrics: LobbyMetrics;
  private readonly wire: LobbyWire;
  private readonly websockets: LobbyWebSockets;
  /** Counts every TCP connection (HTTP requests and WebSockets alike) from accept until it closes. */
  private readonly gate: AcceptGate;
  private readonly udp: LobbyUdp | null;
  private http: FastifyInstance | null = null;
  private httpPort: number | null = null;
  private state: State = 'new';
  private readonly limits: LimitSink<LobbyLimitReason>;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly options: LobbyOptions,
    private readonly deps: LobbyDeps,
  ) {
    const { clock } = deps;
    const limits = (this.limits = deps.limits.forFront<LobbyLimitReason>('lobby'));
    const logger = deps.logger.child({ front: 'lobby' });
    this.log = logger;
    const metrics = createLobbyMetrics(deps.metrics, () => this.wire.service.counts());
    this.metrics = metrics;
    const delivery = deps.state.delivery('lobby', jsonMessageCodec<LobbyEvent>());
    const service = new LobbyService({
      store: deps.state.lobbies('lobby'),
      newId: () => deps.state.newConnectionId(),
      clock,
      delivery,
      observer: mediationObserver(metrics, logger),
      timing: options.timing,
      mediationAvailable: options.udpPort !== null,
      maxLobbies: options.maxLobbies,
      onError: (error) => logger.error({ err: error }, 'lobby mediation timer failed'),
    });
    deps.state.onNodeGone((node) => service.nodeGone(node));
    this.wire = new LobbyWire({ metrics, logger, udpPort: () => this.udp?.port ?? null }, service);
    this.websockets = new LobbyWebSockets(options, { wire: this.wire, delivery, clock, limits, logger });
    this.gate = new AcceptGate({
      maxConnections: options.maxConnections,
      maxConnectionsPerIp: options.maxConnectionsPerIp,
      busyResponse: BUSY_RESPONSE,
      refused: (ip, verdict) => limits.report(verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip),
    });
    this.udp =
      options.udpPort === null
        ? null
        : new LobbyUdp({ wire: this.wire, addressPolicy: new AddressPolicy(options.denyPrivatePeers), limits, logger });
  }

  /** UDP before HTTP: by the time a client can ask for mediation, the port it is told is bound. */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error(`lobby front cannot start: ${this.state}`));
    this.state = 'starting';
    this.starting = this.open();
    return this.starting;
  }

  /** Stops accepting, says going-away to every client, releases both ports. Waits for a start under way. */
  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  ports(): Record<string, number> {
    const ports: Record<string, number> = {};
    if (this.httpPort !== null) ports.http = this.httpPort;
    const udpPort = this.udp?.port ?? null;
    if (udpPort !== null) ports.udp = udpPort;
    return ports;
  }

  /** Public lobbies on the dashboard: a private lobby's id is what lets a player in, so those are only counted. */
  readonly inspection: Inspectable = {
    tables: async (query) => {
      const { rows, total } = collectRows(
        await this.wire.service.publicLobbies(),
        (lobby) => [lobby.id, lobby.name, lobby.currentMembers, lobby.maxMembers],
        query,
      );
      return [
        {
          id: 'lobbies',
          title: 'Public lobbies',
          columns: [
            { name: 'id', kind: 'text' },
            { name: 'name', kind: 'text' },
            { name: 'members', kind: 'count' },
            { name: 'max', kind: 'count' },
          ],
          rows,
          total,
        },
      ];
    },
    act: async () => 'unknown_action',
  };

  stats(): Record<string, number> {
    return {
      ...this.wire.service.counts(),
      connections: this.websockets.connections,
      admitted: this.gate.admitted,
    };
  }

  private async open(): Promise<void> {
    const { host, httpPort, udpPort } = this.options;
    if (httpPort === null) {
      this.log.warn('lobby HTTP port is off: the lobby front serves nothing (the UDP port alone is useless)');
      this.state = 'running';
      return;
    }
    if (this.udp && udpPort !== null) await this.udp.bind(host, udpPort);
    // forceCloseConnections: stop() must not wait for a client that sent half a request and went quiet.
    const deadlines = httpDeadlines(this.options.handshakeTimeoutMs);
    const http = Fastify({
      logger: false,
      bodyLimit: HTTP_BODY_LIMIT,
      forceCloseConnections: true,
      // HTTPS when TLS is configured; the server's deadlines either way.
      serverFactory: (handler) => createListener(this.options.tls ?? null, deadlines, handler),
      // Fastify sets these two on the server itself, over what `http` said.
      keepAliveTimeout: deadlines.keepAliveTimeout,
      requestTimeout: deadlines.requestTimeout,
    });
    this.http = http;
    this.gate.install(http.server);
    await http.register(lobbyHttp, {
      service: this.wire.service,
      metrics: this.metrics,
      logger: this.log,
      limits: this.limits,
      clock: this.deps.clock,
      requestRate: this.options.messageRate,
      requestBurst: this.options.messageBurst,
    });
    http.server.on('upgrade', this.websockets.upgrade);
    await http.listen({ host, port: httpPort });
    const address = http.server.address();
    this.httpPort = typeof address === 'object' && address ? address.port : httpPort;
    this.state = 'running';
    this.log.info({ http: this.httpPort, udp: this.udp?.port ?? null }, 'lobby front listening');
  }

  private async close(): Promise<void> {
    // A failed start is the caller's to report; here it only means less to release.
    await this.starting?.catch(() => undefined);
    this.state = 'stopping';
    await this.wire.dispose();
    await this.websockets.close();
    const closed = Promise.allSettled([this.http?.close(), this.udp?.close()]);
    this.gate.destroyRefused();
    await closed;
    this.state = 'stopped';
  }
}
