// The OpenAPI 3 document of the lobby HTTP API (GET /openapi.json), generated from the route
// table, its zod schemas and the error catalogue: what is documented is what the routes check.
import { z } from 'zod';
import { refusalText, TEXTS, type Refusal } from './errors.js';
import { HTTP_BODY_LIMIT, ROUTES, type RouteSpec } from './routes.js';
import { errorsBody } from './schemas.js';

type JsonSchema = Record<string, unknown>;

/** zod's integers are safe integers; saying so on every count of the document is noise. */
function dropSafeIntegerBounds({ jsonSchema }: { jsonSchema: JsonSchema }): void {
  if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
  if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
}

/** Request side: what a body may hold (unknown keys are allowed and ignored). */
export const inputSchema = (schema: z.ZodType): JsonSchema =>
  z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', override: dropSafeIntegerBounds });
/** Response side: exactly what the server sends. */
export const outputSchema = (schema: z.ZodType): JsonSchema =>
  z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'output', override: dropSafeIntegerBounds });

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: outputSchema(errorsBody) } },
});

/** `/lobbies/:id/join` -> `/lobbies/{id}/join` */
export const openApiPath = (url: string): string => url.replace(/:(\w+)/g, '{$1}');

function parameters(params: z.ZodObject): object[] {
  const schema = inputSchema(params) as { properties?: Record<string, JsonSchema> };
  return Object.entries(schema.properties ?? {}).map(([name, { description, ...property }]) => ({
    name,
    in: 'path',
    required: true,
    schema: property,
    ...(typeof description === 'string' ? { description } : {}),
  }));
}

/** Refusals grouped by status; each response lists its lines in the order they are checked. */
function refusalResponses(route: RouteSpec): Record<string, object> {
  const byStatus = new Map<number, string[]>();
  if (route.body) byStatus.set(400, ['The body fails the schema or is not JSON']);
  for (const refusal of Object.values(route.refusals ?? {}) as Refusal[]) {
    const lines = byStatus.get(refusal.status) ?? [];
    lines.push(`"${refusalText(refusal, '{id}')}"`);
    byStatus.set(refusal.status, lines);
  }
  const responses: Record<string, object> = {};
  for (const [status, lines] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = errorResponse(lines.length > 1 ? `Checked in this order: ${lines.join('; ')}` : (lines[0] as string));
  }
  return responses;
}

function operation(route: RouteSpec): object {
  const { success } = route;
  const contentType = success.contentType ?? 'application/json';
  return {
    summary: route.summary,
    ...(route.params ? { parameters: parameters(route.params) } : {}),
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: inputSchema(route.body),
                ...(route.example !== undefined ? { example: route.example } : {}),
              },
            },
          },
        }
      : {}),
    responses: {
      [String(success.status)]: {
        description: success.description,
        ...(success.schema ? { content: { [contentType]: { schema: outputSchema(success.schema) } } } : {}),
      },
      ...refusalResponses(route),
      ...(route.body ? { '413': errorResponse(`The body is larger than ${HTTP_BODY_LIMIT} bytes`) } : {}),
      '429': {
        ...errorResponse(`"${TEXTS.rateLimited}" (every route, per source address); retry after Retry-After seconds`),
        headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait' } },
      },
    },
  };
}

/** The document for a route table (default: the lobby API's). */
export function buildOpenApiDocument(routes: Readonly<Record<string, RouteSpec>> = ROUTES): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of Object.values(routes)) {
    const path = openApiPath(route.url);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route) };
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'noray lobby front (Orion-compatible)',
      version: '1.0.0',
      description:
        'Lobbies and peer-to-peer mediation. Every response carries Access-Control-Allow-Origin: *. ' +
        'Clients get their token from a WebSocket opened on any path of this server (message client_registered).',
    },
    paths,
  };
}
