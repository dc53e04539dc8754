import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConfigError, describePorts, redactConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { configProblems } from './config/validate.js';
import { systemClock, type Clock } from './core/clock.js';
import { LocalState } from './core/shared-state.js';
import type { Front, FrontDeps } from './fronts/front.js';
import { createNorayFront } from './fronts/noray/index.js';
import { createWsRelayFront } from './fronts/wsrelay/index.js';
import { createTcpRelayFront } from './fronts/tcprelay/index.js';
import { createLobbyFront } from './fronts/lobby/index.js';
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
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(options: AppOptions) {
    const problems = configProblems(options.config);
    if (problems.length > 0) throw new ConfigError(problems.join('; '));
    this.config = options.config;
    this.logger = options.logger ?? createLogger(options.config.logLevel);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.metrics });
    const clock = options.clock ?? systemClock;
    const limits = new LimitReporter(this.metrics, this.logger, clock);
    const state = new LocalState();
    const deps: FrontDeps = { config: this.config, logger: this.logger, metrics: this.metrics, clock, limits, state };
    const fronts: Front[] = [];
    if (this.config.socketPort !== null) fronts.push(createNorayFront(deps));
    if (this.config.wsrelayPort !== null) fronts.push(createWsRelayFront(deps));
    if (this.config.tcprelayPort !== null) fronts.push(createTcpRelayFront(deps));
    if (this.config.lobbyHttpPort !== null) fronts.push(createLobbyFront(deps));
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
      });
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
      for (const front of this.fronts) await front.start();
      await this.ops?.start();
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.state = 'running';
    this.logger.info({ ports: this.describePorts() }, 'noray ready');
  }

  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const results = await Promise.allSettled([
      ...[...this.fronts].reverse().map((front) => front.stop()),
      this.ops?.stop(),
    ]);
    for (const result of results) {
      if (result.status === 'rejected') this.logger.warn({ err: result.reason }, 'error while stopping');
    }
    this.state = 'stopped';
    this.logger.info('noray stopped');
  }
}
