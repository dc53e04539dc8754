// The dashboard on the ops port, as a Fastify plugin: the page and its scripts (public: they hold
// no figures), the snapshot stream and the operator actions (behind the ops token's hook).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyPluginCallback } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { normalizeAddress } from '../../core/endpoint.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import type { Front } from '../../fronts/front.js';
import type { DashboardFeed } from './feed.js';
import { DASHBOARD_CSS, DASHBOARD_HTML } from './page.js';
import { MAX_SEARCH_LENGTH } from './snapshot.js';

/** Unsent stream bytes past which a page that does not read is skipped, not buffered for. */
const MAX_STREAM_BACKLOG = 1024 * 1024;

/** Where `npm run build` puts the page's script: the same path from src/ and from dist/. */
const APP_JS = new URL('../../../dist/web/ops/dashboard/web/app.js', import.meta.url);

const streamQuery = z.object({ search: z.string().max(MAX_SEARCH_LENGTH).default('') });
const actionBody = z.object({
  front: z.string().min(1).max(32),
  action: z.string().min(1).max(32),
  key: z.string().min(1).max(256),
});

/** Route config marking what the ops token does not guard. */
export interface OpsRouteConfig {
  readonly public?: boolean;
}

interface Asset {
  readonly type: string;
  readonly body: string | null;
}

function loadAssets(): Record<string, Asset> {
  const require = createRequire(import.meta.url);
  const read = (path: string | URL) => (existsSync(path) ? readFileSync(path, 'utf8') : null);
  return {
    'app.js': { type: 'text/javascript; charset=utf-8', body: read(APP_JS) },
    'style.css': { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS },
    'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', body: read(require.resolve('uplot/dist/uPlot.iife.min.js')) },
    'uPlot.min.css': { type: 'text/css; charset=utf-8', body: read(require.resolve('uplot/dist/uPlot.min.css')) },
  };
}

/**
 * `max_dashboards`: a page refused because as many as allowed are open on this node;
 * `dashboard_slow_reader`: a snapshot skipped for a page that had not read the earlier ones.
 */
export type DashboardLimitReason = 'max_dashboards' | 'dashboard_slow_reader';

export interface DashboardRoutesOptions {
  readonly feed: DashboardFeed;
  readonly fronts: () => readonly Front[];
  /** Operator actions need NORAY_OPS_TOKEN: without it anyone reaching the port could end sessions. */
  readonly actions: boolean;
  readonly logger: Logger;
  readonly limits: LimitSink<DashboardLimitReason>;
}

export const dashboardRoutes: FastifyPluginCallback<DashboardRoutesOptions> = (app, options, done) => {
  const { feed, logger } = options;
  const assets = loadAssets();
  const config: OpsRouteConfig = { public: true };
  // Everything the page loads is its own: no inline script, nothing from elsewhere.
  const pageHeaders = {
    'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };

  app.get('/', { config }, async (_request, reply) => {
    return reply.headers(pageHeaders).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(DASHBOARD_HTML);
  });

  // Browsers ask for it with every page; there is none.
  app.get('/favicon.ico', { config }, async (_request, reply) => reply.code(204).send());

  app.get<{ Params: { asset: string } }>('/dashboard/:asset', { config }, async (request, reply) => {
    const asset = Object.hasOwn(assets, request.params.asset) ? assets[request.params.asset] : undefined;
    if (!asset) return reply.code(404).send({ error: 'not found' });
    if (asset.body === null) {
      return reply.code(503).type('text/plain').send(`dashboard/${request.params.asset} is not built: run "npm run build"`);
    }
    return reply.headers(pageHeaders).header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  });

  app.get('/dashboard/stream', async (request, reply) => {
    const query = streamQuery.safeParse(request.query);
    if (!query.success) return reply.code(400).send({ error: `search: at most ${MAX_SEARCH_LENGTH} characters` });
    const raw = reply.raw;
    const source = normalizeAddress(request.socket.remoteAddress ?? '?');
    const unsubscribe = feed.subscribe({
      search: query.data.search,
      send: (data) => {
        if (raw.destroyed) return false;
        if (raw.writableLength > MAX_STREAM_BACKLOG) {
          options.limits.report('dashboard_slow_reader', source);
          return false;
        }
        raw.write(`event: snapshot\ndata: ${data}\n\n`);
        return true;
      },
    });
    if (!unsubscribe) {
      options.limits.report('max_dashboards', source);
      return reply.code(503).header('retry-after', '5').send({ error: 'too many dashboards open on this node' });
    }
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx: pass each event on at once instead of buffering the stream.
      'x-accel-buffering': 'no',
    });
    raw.flushHeaders();
    request.raw.socket.setNoDelay(true);
    raw.on('close', unsubscribe);
  });

  app.post('/dashboard/action', async (request, reply) => {
    if (!options.actions) {
      return reply.code(403).send({ error: 'operator actions need NORAY_OPS_TOKEN to be set on the server' });
    }
    const body = actionBody.safeParse(request.body);
    if (!body.success) return reply.code(400).send({ error: 'expected {"front", "action", "key"} strings' });
    const { front: name, action, key } = body.data;
    const front = options.fronts().find((candidate) => candidate.name === name);
    if (!front?.inspection) return reply.code(404).send({ error: `no front "${name}" with actions here` });
    const outcome = await front.inspection.act(action, key);
    if (outcome === 'unknown_action') return reply.code(400).send({ error: `${name} has no action "${action}"` });
    logger.info({ front: name, action, key, outcome, remoteAddress: request.socket.remoteAddress }, 'operator action');
    if (outcome === 'not_found') return reply.code(404).send({ error: `${key} is not on this node`, outcome });
    return { outcome };
  });

  done();
};
