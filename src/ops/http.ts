import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { describePorts } from '../config/load.js';
import type { Front } from '../fronts/front.js';
import { throttleDescriptorErrors } from '../core/open-files.js';

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

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: Registry;
  fronts: () => readonly Front[];
  logger: Logger;
  startedAt: number;
}

/** Operations HTTP: /health (state of every front) and /metrics (Prometheus text). */
export class OpsServer {
  private readonly app: FastifyInstance;
  private boundPort = 0;

  constructor(private readonly options: OpsServerOptions) {
    // forceCloseConnections: stop() must not wait for a client that sent half a request and went quiet.
    this.app = Fastify({ logger: false, forceCloseConnections: true });
    this.app.get('/health', async () => ({
      status: 'ok',
      uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
      fronts: Object.fromEntries(
        options.fronts().map((front) => [front.name, { ports: shortPorts(front.ports()), stats: front.stats() }]),
      ),
      process: processInfo(),
    }));
    this.app.get('/metrics', async (_request, reply) => {
      const body = await options.metrics.metrics();
      return reply.header('content-type', options.metrics.contentType).send(body);
    });
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
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
