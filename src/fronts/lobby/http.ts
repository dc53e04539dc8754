// The lobby's HTTP API as a Fastify plugin: Orion's routes, bodies checked against the zod schemas
// at the edge, refusals worded by the error catalogue, and a request rate per source address.
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { maskSecret } from '../../core/ids.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import { MAX_LISTED_LOBBIES, type LobbyError, type LobbyResult, type LobbyService } from '../../core/lobbies/index.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { refusalText, TEXTS, type Refusals } from './errors.js';
import type { LobbyLimitReason, LobbyMetrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { ROUTES } from './routes.js';
import { describeIssues } from './schemas.js';

export interface LobbyHttpOptions {
  readonly service: LobbyService;
  readonly metrics: LobbyMetrics;
  readonly logger: Logger;
  readonly limits: LimitSink<LobbyLimitReason>;
  readonly clock: Clock;
  /** Requests per second per source address, and the burst allowed above that rate (429 past it). */
  readonly requestRate: number;
  readonly requestBurst: number;
}

/**
 * Every answer carries `Access-Control-Allow-Origin: *`, 429s and 404s included; OPTIONS
 * preflights get 200. Bodies are JSON whatever their content type, as Orion reads them.
 */
export const lobbyHttp: FastifyPluginCallback<LobbyHttpOptions> = (app, options, done) => {
  const { service, metrics, logger, limits } = options;
  const rate = new SourceRateLimiter(options.requestRate, options.requestBurst, options.clock);
  const sourceOf = (socketAddress: string | undefined): string => normalizeAddress(socketAddress ?? '?');

  // Orion reads every body as JSON whatever its content type; malformed JSON is a 400 here (Orion: 500).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, parsed) => {
    try {
      parsed(null, JSON.parse(body as string));
    } catch {
      parsed(Object.assign(new Error(TEXTS.malformedJson), { statusCode: 400 }), undefined);
    }
  });

  app.addHook('onRequest', (_request, reply, next) => {
    reply.header('access-control-allow-origin', '*');
    next();
  });
  // After the CORS header, so that a browser client can read the 429.
  app.addHook('onRequest', (request, reply, next) => {
    const ip = sourceOf(request.socket.remoteAddress);
    if (rate.take(ip)) return next();
    limits.report('http_rate', ip);
    void reply.code(429).header('retry-after', '1').send({ errors: [TEXTS.rateLimited] });
  });
  app.setErrorHandler((error: { statusCode?: number; message?: string }, _request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status >= 500) logger.error({ err: error }, 'lobby HTTP handler failed');
    else metrics.invalidMessage('http', 'malformed');
    return reply.code(status).send({ errors: [status >= 500 ? TEXTS.internal : String(error.message)] });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ errors: [TEXTS.notFound] }));

  app.options('*', (request, reply) => {
    const requested = request.headers['access-control-request-headers'];
    return reply
      .code(200)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      .header('access-control-allow-headers', typeof requested === 'string' && requested ? requested : 'Content-Type')
      .header('access-control-max-age', '86400')
      .send();
  });

  const { ping, openapi, listLobbies, createLobby, joinLobby, startMediation } = ROUTES;
  const document = buildOpenApiDocument();

  app.route({
    method: ping.method,
    url: ping.url,
    handler: (_request, reply) =>
      reply.code(ping.success.status).type('text/plain; charset=utf-8').send('pong' satisfies z.output<typeof ping.success.schema>),
  });

  app.route({
    method: openapi.method,
    url: openapi.url,
    handler: (_request, reply) => reply.code(openapi.success.status).send(document),
  });

  app.route({
    method: listLobbies.method,
    url: listLobbies.url,
    handler: async (request, reply) => {
      const listing = await service.publicListing();
      const page = pageOf(request.query);
      reply.code(listLobbies.success.status);
      // Orion's request: the cached body, the same bytes for everyone until the listing changes.
      if (page === null) return reply.type('application/json; charset=utf-8').send(listing.json);
      const body: z.output<typeof listLobbies.success.schema> = {
        lobbies: listing.lobbies.slice(page.offset, page.offset + page.limit),
      };
      return reply.send(body);
    },
  });

  app.route({
    method: createLobby.method,
    url: createLobby.url,
    handler: async (request, reply) => {
      const body = createLobby.body.safeParse(request.body);
      if (!body.success) return badRequest(reply, describeIssues(body.error));
      const { token, ...lobby } = body.data;
      const result = await service.createLobby(token, lobby);
      if (result.ok) logger.info({ lobbyId: result.value.lobbyId, token: maskSecret(token) }, 'lobby created');
      else if (result.error === 'tooManyLobbies') {
        limits.report('max_lobbies', sourceOf(request.socket.remoteAddress));
      }
      return respond(reply, result, createLobby.refusals, '', createLobby.success.status, (value): z.output<
        typeof createLobby.success.schema
      > => value);
    },
  });

  app.route({
    method: joinLobby.method,
    url: joinLobby.url,
    handler: async (request, reply) => {
      const params = joinLobby.params.safeParse(request.params);
      const body = joinLobby.body.safeParse(request.body);
      if (!params.success) return badRequest(reply, describeIssues(params.error));
      if (!body.success) return badRequest(reply, describeIssues(body.error));
      const { id } = params.data;
      const result = await service.joinLobby(body.data.token, id, body.data.peerName);
      return respond(reply, result, joinLobby.refusals, id, joinLobby.success.status, (value): z.output<
        typeof joinLobby.success.schema
      > => value);
    },
  });

  app.route({
    method: startMediation.method,
    url: startMediation.url,
    handler: async (request, reply) => {
      const params = startMediation.params.safeParse(request.params);
      const body = startMediation.body.safeParse(request.body);
      if (!params.success) return badRequest(reply, describeIssues(params.error));
      if (!body.success) return badRequest(reply, describeIssues(body.error));
      const { id } = params.data;
      const result = await service.startMediation(body.data.token, id);
      // The document promises an empty body.
      return respond(reply, result, startMediation.refusals, id, startMediation.success.status, () => undefined);
    },
  });

  function badRequest(reply: FastifyReply, errors: string[]): FastifyReply {
    metrics.invalidMessage('http', 'invalid_payload');
    return reply.code(400).send({ errors });
  }

  done();
};

/** Success with `status` and the rendered body (none if undefined), or the catalogue's answer to the refusal. */
function respond<T, E extends LobbyError>(
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

/**
 * Optional paging of `GET /lobbies` (`?offset=&limit=`, limit at most MAX_LISTED_LOBBIES); null
 * without either, which is what Orion sends. Values that are not whole numbers count as absent.
 */
function pageOf(query: unknown): { offset: number; limit: number } | null {
  if (typeof query !== 'object' || query === null) return null;
  const { offset, limit } = query as { offset?: unknown; limit?: unknown };
  const read = (value: unknown): number | null =>
    typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : null;
  const from = read(offset);
  const count = read(limit);
  if (from === null && count === null) return null;
  return { offset: from ?? 0, limit: Math.min(count ?? MAX_LISTED_LOBBIES, MAX_LISTED_LOBBIES) };
}
