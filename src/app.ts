import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConfigError, describePorts, redactConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { configProblems } from './config/validate.js';
import { systemClock, type Clock } from './core/clock.js';
import { LocalState, randomNodeId, type SharedState } from './core/shared-state.js';
import { RedisState } from './core/redis/state.js';
import type { Front, FrontDeps } from './fronts/front.js';
import { createNorayFront } from './fronts/noray/index.js';
import { createWsRelayFront } from './fronts/wsrelay/index.js';
import { createTcpRelayFront } from './fronts/tcprelay/index.js';
import { createLobbyFront } from './fronts/lobby/index.js';
import { TlsContext, type TlsInfo } from './fronts/shared/tls.js';
import { createLogger } from './ops/logger.js';
import { OpsServer } from './ops/http.js';
import { LimitReporter } from './ops/limit-reporter.js';

export interface AppOptions {
  config: Config;
  logger?: Logger;
  clock?: Clock;
  /** Collect Node process metrics (off in tests that build many apps). */
  processMetrics?: boolean;
}

/** The composition root: builds every enabled front from the config and owns start and stop. */
export class App {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics = new Registry();
  readonly fronts: readonly Front[];
  private ops: OpsServer | null = null;
  /** Where the fronts' stores live: memory, or the cluster's Redis (NORAY_REDIS_URL). */
  readonly shared: SharedState;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  /** NORAY_TLS_CERT/KEY of the lobby, wsrelay and ops ports; null: they speak plain HTTP/WS. */
  private readonly tls: TlsContext | null;

  constructor(options: AppOptions) {
    const problems = configProblems(options.config);
    if (problems.length > 0) throw new ConfigError(problems.join('; '));
    this.config = options.config;
    this.logger = options.logger ?? createLogger(options.config.logLevel);
    // Read now: a missing or broken file is a config error, before anything binds.
    this.tls = TlsContext.fromConfig(this.config);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.metrics });
    const clock = options.clock ?? systemClock;
    const limits = new LimitReporter(this.metrics, this.logger, clock);
    const state = (this.shared = sharedState(this.config, clock, this.logger));
    const deps: FrontDeps = { config: this.config, logger: this.logger, metrics: this.metrics, clock, limits, state };
    const fronts: Front[] = [];
    if (this.config.socketPort !== null) fronts.push(createNorayFront(deps));
    if (this.config.wsrelayPort !== null) fronts.push(createWsRelayFront(deps, this.tls));
    if (this.config.tcprelayPort !== null) fronts.push(createTcpRelayFront(deps));
    if (this.config.lobbyHttpPort !== null) fronts.push(createLobbyFront(deps, this.tls));
    this.fronts = fronts;
    if (this.config.httpPort !== null) {
      this.ops = new OpsServer({
        host: this.config.httpHost,
        port: this.config.httpPort,
        metrics: this.metrics,
        fronts: () => this.fronts,
        logger: this.logger,
        startedAt: Date.now(),
        token: this.config.opsToken,
        maxConnections: this.config.maxConnections,
        maxConnectionsPerIp: this.config.maxConnectionsPerIp,
        handshakeTimeoutMs: this.config.handshakeTimeout,
        limits: limits.forFront('ops'),
        tls: this.tls,
        dashboard: {
          board: this.shared.nodeBoard(),
          nodeId: this.shared.nodeId,
          clustered: this.shared.clustered,
          // Posted at every heartbeat, kept for three (RedisState.nodeBoard).
          postIntervalMs: this.config.nodeHeartbeat,
        },
      });
    }
  }

  /** Whether the lobby, wsrelay and ops ports speak TLS (NORAY_TLS_CERT and NORAY_TLS_KEY set). */
  get tlsEnabled(): boolean {
    return this.tls !== null;
  }

  /** The certificate served now; null without TLS. */
  tlsInfo(): TlsInfo | null {
    return this.tls?.info ?? null;
  }

  /**
   * Rereads NORAY_TLS_CERT and NORAY_TLS_KEY (SIGHUP): new connections get the new certificate,
   * open ones keep theirs. On an unusable file the old certificate stays and the error is logged.
   * Returns whether the new files are served; false without TLS.
   */
  reloadTls(): boolean {
    if (this.tls === null) {
      this.logger.warn('tls reload asked, but NORAY_TLS_CERT and NORAY_TLS_KEY are not set');
      return false;
    }
    try {
      const info = this.tls.reload();
      this.logger.info({ tls: info }, 'tls reloaded');
      return true;
    } catch (error) {
      this.logger.error({ err: error, tls: this.tls.info }, 'tls reload failed, keeping the old certificate');
      return false;
    }
  }

  front<F extends Front = Front>(name: string): F | undefined {
    return this.fronts.find((front) => front.name === name) as F | undefined;
  }

  /** The ops server's connection counts; null when it is off. */
  opsStats(): Record<string, number> | null {
    return this.ops?.stats() ?? null;
  }

  /** Bound ports of every part, by front and role. */
  ports(): Record<string, Record<string, number | number[]>> {
    const ports: Record<string, Record<string, number | number[]>> = {};
    for (const front of this.fronts) ports[front.name] = front.ports();
    if (this.ops) ports.ops = { http: this.ops.port };
    return ports;
  }

  /** ports() with long port lists shortened, for logs and /health. */
  describePorts(): Record<string, Record<string, number | number[] | string>> {
    const shown: Record<string, Record<string, number | number[] | string>> = {};
    for (const [front, roles] of Object.entries(this.ports())) {
      shown[front] = Object.fromEntries(
        Object.entries(roles).map(([role, value]) => [role, Array.isArray(value) ? describePorts(value) : value]),
      );
    }
    return shown;
  }

  /** Binds every enabled front, then the ops server; on any failure releases what was bound. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`app already ${this.state}`);
    this.state = 'starting';
    this.logger.info({ config: redactConfig(this.config) }, 'effective config');
    try {
      await this.shared.start();
      for (const front of this.fronts) await front.start();
      await this.ops?.start();
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.state = 'running';
    this.logger.info({ ports: this.describePorts(), ...(this.tls ? { tls: this.tls.info } : {}) }, 'noray ready');
  }

  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const results = await Promise.allSettled([
      ...[...this.fronts].reverse().map((front) => front.stop()),
      this.ops?.stop(),
    ]);
    results.push(...(await Promise.allSettled([this.shared.stop()])));
    for (const result of results) {
      if (result.status === 'rejected') this.logger.warn({ err: result.reason }, 'error while stopping');
    }
    this.state = 'stopped';
    this.logger.info('noray stopped');
  }
}

/**
 * Whether the config turns TLS on, after reading and checking both files as App would (throws a
 * ConfigError): the primary of --workers N checks once instead of every worker failing.
 */
export function tlsConfigured(config: Config): boolean {
  return TlsContext.fromConfig(config) !== null;
}

/** One process's memory, or a cluster's Redis when NORAY_REDIS_URL is set. */
function sharedState(config: Config, clock: Clock, logger: Logger): SharedState {
  if (config.redisUrl === null) return new LocalState();
  const nodeId = config.nodeId ?? randomNodeId();
  const address = nodeAddress(config);
  return new RedisState({
    url: config.redisUrl,
    nodeId,
    clusterName: config.clusterName,
    nodeAddress: address,
    info: { address },
    heartbeatMs: config.nodeHeartbeat,
    ttlMs: config.nodeTimeout,
    clock,
    logger,
  });
}

/** NORAY_NODE_ADDRESS, or NORAY_UDP_HOST when it names one address, or the first non-loopback IPv4 address. */
function nodeAddress(config: Config): string {
  if (config.nodeAddress !== null) return config.nodeAddress;
  if (config.udpHost !== '0.0.0.0' && config.udpHost !== '::') return config.udpHost;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}
