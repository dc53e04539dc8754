import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { ConfigError, describePorts } from '../config/load.js';
import { MIN_OPS_TOKEN_LENGTH } from '../config/options/general.js';
import type { Front } from '../fronts/front.js';
import { throttleDescriptorErrors } from '../core/open-files.js';
import type { LimitSink } from '../core/limits/reporting.js';
import { THROTTLED_LOG_EVERY_MS, ThrottledLog } from '../core/throttled-log.js';
import { AcceptGate, httpDeadlines } from '../fronts/shared/accept-gate.js';
import { busyResponse } from '../fronts/shared/websocket.js';
import { createListener, type TlsContext } from '../fronts/shared/tls.js';
import type { NodeBoard } from '../core/node-board.js';
import { DashboardFeed } from './dashboard/feed.js';
import { dashboardRoutes, type DashboardLimitReason, type OpsRouteConfig } from './dashboard/routes.js';

function shortPorts(ports: Record<string, number | number[]>) {
  return Object.fromEntries(Object.entries(ports).map(([role, value]) => [role, Array.isArray(value) ? describePorts(value) : value]));
}

/** Memory and live libuv resources (sockets, timers...) by type: for soak runs and leak hunts. */
function processInfo() {
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const activeResources: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) activeResources[type] = (activeResources[type] ?? 0) + 1;
  return { memory: { rss, heapUsed, heapTotal, external }, activeResources };
}

/** Loopback listen addresses: an ops port there is only reachable from this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(bare);
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

type AuthFailure = 'missing' | 'invalid';

/** Failed ops authentications are logged at most once per this interval, with a count of the rest. */
export const AUTH_LOG_EVERY_MS = THROTTLED_LOG_EVERY_MS;

/**
 * NORAY_OPS_TOKEN on the ops port: `Authorization: Bearer TOKEN`, compared in constant time over
 * sha256 digests (equal lengths whatever was sent, so neither content nor length leaks).
 */
class BearerAuth {
  private readonly expected: Buffer;
  private readonly failureLog: ThrottledLog;

  constructor(
    token: string,
    private readonly failures: Counter<'reason'>,
    private readonly logger: Logger,
    now: () => number,
  ) {
    // The option's parser refuses short tokens; an embedder passing one straight in is refused too.
    if (token.length < MIN_OPS_TOKEN_LENGTH) {
      throw new ConfigError(`NORAY_OPS_TOKEN needs at least ${MIN_OPS_TOKEN_LENGTH} characters`);
    }
    this.expected = sha256(token);
    this.failureLog = new ThrottledLog(now);
  }

  /** null when the request carries the token. */
  check(header: string | undefined): AuthFailure | null {
    if (header === undefined || header === '') return 'missing';
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) return 'invalid';
    return timingSafeEqual(sha256(match[1] as string), this.expected) ? null : 'invalid';
  }

  /** Counts every failure; logs the first of a minute, and how many followed it in the next log. */
  fail(reason: AuthFailure, request: FastifyRequest): void {
    this.failures.inc({ reason });
    // Neither the header nor the path: both are the client's text, and a wrong token may be a real one mistyped.
    this.failureLog.report((suppressed) =>
      this.logger.warn(
        { reason, remoteAddress: request.socket.remoteAddress, suppressedSinceLastLog: suppressed },
        'ops request without a valid NORAY_OPS_TOKEN',
      ),
    );
  }

}

function refuse(reply: FastifyReply, reason: AuthFailure): FastifyReply {
  const challenge = reason === 'invalid' ? 'Bearer realm="noray ops", error="invalid_token"' : 'Bearer realm="noray ops"';
  return reply
    .code(401)
    .header('www-authenticate', challenge)
    .header('cache-control', 'no-store')
    .send({ error: 'unauthorized: send Authorization: Bearer NORAY_OPS_TOKEN' });
}

/** Why the ops port refused something: the `reason` of `noray_limit_rejections_total{front="ops"}`. */
export type OpsLimitReason = 'max_connections' | 'max_connections_per_ip' | DashboardLimitReason;

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: Registry;
  fronts: () => readonly Front[];
  logger: Logger;
  startedAt: number;
  /**
   * NORAY_OPS_TOKEN. When set, every route needs `Authorization: Bearer TOKEN`, except that
   * /health answers its bare status to anyone (load balancer probes). null: open, as before.
   */
  token?: string | null;
  /** Clock of the auth-failure log throttle (tests). */
  now?: () => number;
  /** Connection caps, counted at accept (NORAY_MAX_CONNECTIONS, _PER_IP), and NORAY_HANDSHAKE_TIMEOUT. */
  maxConnections?: number;
  maxConnectionsPerIp?: number;
  handshakeTimeoutMs?: number;
  /** Where refusals at accept are counted (`noray_limit_rejections_total{front="ops"}`). */
  limits?: LimitSink<OpsLimitReason>;
  /** NORAY_TLS_CERT/KEY: HTTPS instead of HTTP (absent or null: plain). */
  tls?: TlsContext | null;
  /** The dashboard at `/`: where nodes post their figures, and who this node is. Absent: no dashboard. */
  dashboard?: { readonly board: NodeBoard; readonly nodeId: string; readonly clustered: boolean; readonly postIntervalMs?: number };
}

/** Operations HTTP: the dashboard at /, /health (state of every front) and /metrics (Prometheus text). */
export class OpsServer {
  private readonly app: FastifyInstance;
  private boundPort = 0;
  private readonly auth: BearerAuth | null;
  private readonly gate: AcceptGate;
  /** Requests that may see /health's details: every request when no token is configured. */
  private readonly authorized = new WeakSet<FastifyRequest>();
  private readonly feed: DashboardFeed | null;

  constructor(private readonly options: OpsServerOptions) {
    // forceCloseConnections: stop() must not wait for a client that sent half a request and went quiet.
    const deadlines = httpDeadlines(options.handshakeTimeoutMs ?? 5000);
    this.app = Fastify({
      logger: false,
      forceCloseConnections: true,
      // HTTPS when TLS is configured; the server's deadlines either way.
      serverFactory: (handler) => createListener(options.tls ?? null, deadlines, handler),
      keepAliveTimeout: deadlines.keepAliveTimeout,
      requestTimeout: deadlines.requestTimeout,
    });
    this.gate = new AcceptGate({
      maxConnections: options.maxConnections ?? 10_000,
      maxConnectionsPerIp: options.maxConnectionsPerIp ?? 256,
      busyResponse: busyResponse(),
      refused: (ip, verdict) => options.limits?.report(verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip),
    });
    this.gate.install(this.app.server);
    // Registered with or without a token (0 without), so dashboards and alerts need no second variant.
    const failures = new Counter({
      name: 'noray_ops_auth_failures_total',
      help: 'Ops port requests without a valid NORAY_OPS_TOKEN (refused, or /health with a wrong one), by reason',
      labelNames: ['reason'],
      registers: [options.metrics],
    });
    const token = options.token ?? null;
    this.auth = token === null ? null : new BearerAuth(token, failures, options.logger, options.now ?? Date.now);
    const auth = this.auth;
    if (auth) {
      // onRequest runs for every request, unknown routes and methods included: without the token
      // everything is 401 (whether a path exists stays hidden) except the bare status of /health.
      this.app.addHook('onRequest', async (request, reply) => {
        // The dashboard's page and scripts: no figures in them, and a browser cannot send a header to load them.
        if ((request.routeOptions.config as OpsRouteConfig).public === true) return;
        const failure = auth.check(request.headers.authorization);
        if (failure === null) {
          this.authorized.add(request);
          return;
        }
        const isHealth = request.routeOptions.url === '/health' && (request.method === 'GET' || request.method === 'HEAD');
        // A probe that sends no token at all is expected: only a wrong token on /health is a failure.
        if (isHealth && failure === 'missing') return;
        auth.fail(failure, request);
        if (isHealth) return;
        return refuse(reply, failure);
      });
    }
    this.app.get('/health', async (request, reply) => {
      if (auth && !this.authorized.has(request)) {
        return reply.header('cache-control', 'no-store').send({ status: 'ok' });
      }
      return {
        status: 'ok',
        uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
        fronts: Object.fromEntries(
          options.fronts().map((front) => [front.name, { ports: shortPorts(front.ports()), stats: front.stats() }]),
        ),
        process: processInfo(),
      };
    });
    this.app.get('/metrics', async (_request, reply) => {
      const body = await options.metrics.metrics();
      return reply.header('content-type', options.metrics.contentType).send(body);
    });
    const dashboard = options.dashboard;
    this.feed = dashboard
      ? new DashboardFeed({
          fronts: options.fronts,
          metrics: options.metrics,
          board: dashboard.board,
          nodeId: dashboard.nodeId,
          clustered: dashboard.clustered,
          ...(dashboard.postIntervalMs === undefined ? {} : { postIntervalMs: dashboard.postIntervalMs }),
          startedAt: options.startedAt,
          actions: auth !== null,
          logger: options.logger,
        })
      : null;
    if (this.feed) {
      void this.app.register(dashboardRoutes, {
        feed: this.feed,
        fronts: options.fronts,
        actions: auth !== null,
        logger: options.logger,
        limits: options.limits ?? { report: () => undefined },
      });
    }
  }

  /** Pages open on the dashboard now. */
  get dashboards(): number {
    return this.feed?.subscriberCount ?? 0;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    // Fastify keeps no 'error' listener once listening: an accept error would be uncaught.
    this.app.server.on(
      'error',
      throttleDescriptorErrors((err) => this.options.logger.warn({ err }, 'ops listener error')),
    );
    const address = this.app.server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.options.port;
    this.feed?.startPosting();
    if (!this.auth && !isLoopbackHost(this.options.host)) {
      this.options.logger.warn(
        { host: this.options.host, port: this.boundPort },
        'ops port exposed without NORAY_OPS_TOKEN: anyone who reaches it reads /metrics and /health; set NORAY_OPS_TOKEN or NORAY_HTTP_HOST=127.0.0.1',
      );
    }
  }

  /** Connections held now (counted from accept), like a front's `admitted`. */
  stats(): Record<string, number> {
    return { admitted: this.gate.admitted, dashboards: this.dashboards };
  }

  async stop(): Promise<void> {
    this.feed?.stop();
    const closed = this.app.close();
    this.gate.destroyRefused();
    await closed;
  }
}
