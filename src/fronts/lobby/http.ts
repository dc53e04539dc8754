// The lobby's HTTP API as a Fastify plugin: Orion's routes, bodies checked against the zod schemas
// at the edge, refusals worded by the error catalogue, and a request rate per source address.
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { maskSecret } from '../../core/ids.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import type { LobbyError, LobbyResult, LobbyService } from '../../core/lobbies/index.js';
import type { LimitReporter } from '../../ops/limit-reporter.js';
import {
  CREATE_LOBBY_REFUSALS,
  JOIN_LOBBY_REFUSALS,
  refusalText,
  START_MEDIATION_REFUSALS,
  TEXTS,
  type Refusals,
} from './errors.js';
import type { LobbyLimitReason, LobbyMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { createLobbyBody, describeIssues, joinLobbyBody, startMediationBody } from './schemas.js';

/** Larger bodies get 413. Set on the Fastify instance (`bodyLimit`), which the plugin cannot do. */
export const HTTP_BODY_LIMIT = 16 * 1024;

export interface LobbyHttpOptions {
  readonly service: LobbyService;
  readonly metrics: LobbyMetrics;
  readonly logger: Logger;
  readonly limits: LimitReporter;
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
    limits.report('lobby', 'http_rate' satisfies LobbyLimitReason, ip);
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

  app.get('/ping', (_request, reply) => reply.code(200).type('text/plain; charset=utf-8').send('pong'));
  app.get('/openapi.json', (_request, reply) => reply.code(200).send(openApiDocument));
  app.get('/lobbies', (_request, reply) => reply.code(200).send({ lobbies: service.publicLobbies() }));

  app.post('/lobbies', (request, reply) => {
    const body = createLobbyBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, describeIssues(body.error));
    const { token, ...lobby } = body.data;
    const result = service.createLobby(token, lobby);
    if (result.ok) logger.info({ lobbyId: result.value.lobbyId, token: maskSecret(token) }, 'lobby created');
    else if (result.error === 'tooManyLobbies') {
      limits.report('lobby', 'max_lobbies' satisfies LobbyLimitReason, sourceOf(request.socket.remoteAddress));
    }
    return respond(reply, result, CREATE_LOBBY_REFUSALS, '', 201, (value) => value);
  });

  app.post<{ Params: { id: string } }>('/lobbies/:id/join', (request, reply) => {
    const body = joinLobbyBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, describeIssues(body.error));
    const result = service.joinLobby(body.data.token, request.params.id, body.data.peerName);
    return respond(reply, result, JOIN_LOBBY_REFUSALS, request.params.id, 200, (value) => value);
  });

  app.post<{ Params: { id: string } }>('/lobbies/:id/ptp/start', (request, reply) => {
    const body = startMediationBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, describeIssues(body.error));
    const result = service.startMediation(body.data.token, request.params.id);
    return respond(reply, result, START_MEDIATION_REFUSALS, request.params.id, 200, () => undefined);
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
