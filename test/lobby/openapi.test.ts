// The OpenAPI document against the running routes: it is generated from the route table, and
// what it promises (request constraints, response shapes, refusal texts) is what the server does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { refusalText, TEXTS } from '../../src/fronts/lobby/errors.js';
import { buildOpenApiDocument, inputSchema, openApiPath } from '../../src/fronts/lobby/openapi.js';
import { ROUTES, type RouteSpec } from '../../src/fronts/lobby/routes.js';
import { runs } from '../helpers/fuzz.js';
import { clientPool, startLobby } from './fixtures.js';
import { http, type HttpAnswer } from '../clients/orion.js';

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
};
interface Response {
  description: string;
  content?: Record<string, { schema: JsonSchema }>;
}
interface Operation {
  requestBody?: { content: { 'application/json': { schema: JsonSchema; example?: Record<string, unknown> } } };
  responses: Record<string, Response>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

const document = buildOpenApiDocument() as Document;
const routes: RouteSpec[] = Object.values(ROUTES);
const bodyRoutes = routes.filter((route) => route.body !== undefined);
const connect = clientPool();

const operationOf = (route: RouteSpec): Operation => {
  const operation = document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
  if (!operation) throw new Error(`${route.method} ${route.url} is not documented`);
  return operation;
};
const requestSchemaOf = (route: RouteSpec): JsonSchema => {
  const schema = operationOf(route).requestBody?.content['application/json'].schema;
  if (!schema) throw new Error(`${route.url} documents no body`);
  return schema;
};
/** A validator built from the document alone, as a client generator would. */
const validatorOf = (schema: JsonSchema) => z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
const urlOf = (route: RouteSpec, lobbyId: string) => route.url.replace(':id', lobbyId);

/** The server refused the body itself, not its token. */
const schemaRefusal = (answer: HttpAnswer): boolean =>
  answer.status === 400 && JSON.stringify(answer.body) !== JSON.stringify({ errors: [TEXTS.unregistered] });

/** The answer is documented for the route, and its body has the documented shape. */
function expectDocumented(route: RouteSpec, answer: HttpAnswer): void {
  const response = operationOf(route).responses[String(answer.status)];
  expect(response, `${route.method} ${route.url} ${answer.status} documented`).toBeDefined();
  const content = response?.content;
  if (!content) {
    expect(answer.text, `${route.url} ${answer.status}: documented without a body`).toBe('');
    return;
  }
  const [type, { schema }] = Object.entries(content)[0] as [string, { schema: JsonSchema }];
  expect(answer.headers.get('content-type')?.startsWith(type), `${route.url} ${answer.status} is ${type}`).toBe(true);
  const checked = validatorOf(schema).safeParse(type === 'text/plain' ? answer.text : answer.body);
  expect(checked.success, `${route.url} ${answer.status} ${answer.text}`).toBe(true);
}

/** Bodies that each break one constraint the document states, derived from the document alone. */
function violations(schema: JsonSchema, valid: Record<string, unknown>): Array<[string, unknown]> {
  const broken: Array<[string, unknown]> = [];
  for (const name of schema.required ?? []) {
    const { [name]: _omitted, ...rest } = valid;
    broken.push([`without ${name}`, rest]);
  }
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const withValue = (label: string, value: unknown) => broken.push([`${name} ${label}`, { ...valid, [name]: value }]);
    if (property.type === 'string') {
      withValue('not a string', 42);
      if (property.maxLength !== undefined) withValue('too long', 'a'.repeat(property.maxLength + 1));
      if (property.minLength !== undefined && property.minLength > 0) withValue('too short', 'a'.repeat(property.minLength - 1));
      if (property.pattern !== undefined) {
        const pattern = new RegExp(property.pattern);
        const mismatch = [' leading space', 'hy-phen', 'é', ''].find((candidate) => !pattern.test(candidate));
        if (mismatch !== undefined) withValue(`not matching ${property.pattern}`, mismatch);
      }
    }
    if (property.type === 'boolean') withValue('not a boolean', 'yes');
    if (property.type === 'integer') {
      withValue('not an integer', 1.5);
      if (property.minimum !== undefined) withValue('below minimum', property.minimum - 1);
      if (property.maximum !== undefined) withValue('above maximum', property.maximum + 1);
    }
  }
  return broken;
}

describe('lobby OpenAPI document', () => {
  it('is served as generated from the route table: every route, and only those', async () => {
    const { httpPort } = await startLobby();
    const served = await http(httpPort, 'GET', '/openapi.json');
    expect(served.status).toBe(200);
    expect(served.body).toEqual(document);
    expect(document.openapi).toMatch(/^3\.0\./);
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(routes.map((route) => `${route.method} ${openApiPath(route.url)}`).sort());
  });

  it.each(bodyRoutes.map((route) => [route.url, route]))(
    '%s: documents the schema the route checks, and its example passes both',
    (_url, route) => {
      const body = route.body as z.ZodType;
      expect(requestSchemaOf(route)).toEqual(inputSchema(body));
      const example = operationOf(route).requestBody?.content['application/json'].example;
      expect(body.safeParse(example).success).toBe(true);
      expect(validatorOf(requestSchemaOf(route)).safeParse(example).success).toBe(true);
    },
  );

  it.each(routes.filter((route) => route.refusals).map((route) => [route.url, route]))(
    '%s: documents every refusal under its status with its exact text',
    (_url, route) => {
      for (const [code, refusal] of Object.entries(route.refusals ?? {})) {
        const response = operationOf(route).responses[String(refusal.status)];
        expect(response?.description, code).toContain(refusalText(refusal, '{id}'));
      }
    },
  );

  it('the running routes take the documented examples, answer as documented, and refuse each broken constraint', async () => {
    const { httpPort, udpPort } = await startLobby({ messageRate: 100_000, messageBurst: 100_000 });
    const host = await connect(httpPort, udpPort);
    const member = await connect(httpPort, udpPort);
    const exampleOf = (route: RouteSpec, token: string) => ({
      ...operationOf(route).requestBody?.content['application/json'].example,
      token,
    });
    const send = (route: RouteSpec, body: unknown, lobbyId = 'ZZZZZ') => http(httpPort, route.method, urlOf(route, lobbyId), body);

    // Every constraint the document states is one the route enforces (checked before any state).
    for (const route of bodyRoutes) {
      for (const [label, body] of violations(requestSchemaOf(route), exampleOf(route, host.token))) {
        const answer = await send(route, body);
        expect(schemaRefusal(answer), `${route.url} ${label}: ${answer.status} ${answer.text}`).toBe(true);
        expectDocumented(route, answer);
      }
    }

    // The examples, with real tokens, succeed with the documented status and shape.
    const created = await send(ROUTES.createLobby, exampleOf(ROUTES.createLobby, host.token));
    expect(created.status).toBe(ROUTES.createLobby.success.status);
    expectDocumented(ROUTES.createLobby, created);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    const joined = await send(ROUTES.joinLobby, exampleOf(ROUTES.joinLobby, member.token), lobbyId);
    expect(joined.status).toBe(ROUTES.joinLobby.success.status);
    expectDocumented(ROUTES.joinLobby, joined);
    const started = await send(ROUTES.startMediation, exampleOf(ROUTES.startMediation, host.token), lobbyId);
    expect(started.status).toBe(ROUTES.startMediation.success.status);
    expectDocumented(ROUTES.startMediation, started);

    // Refusals and the GET routes answer as documented too.
    const answers: Array<[RouteSpec, HttpAnswer]> = [
      [ROUTES.ping, await http(httpPort, 'GET', '/ping')],
      [ROUTES.openapi, await http(httpPort, 'GET', '/openapi.json')],
      [ROUTES.listLobbies, await http(httpPort, 'GET', '/lobbies')],
      [ROUTES.createLobby, await send(ROUTES.createLobby, exampleOf(ROUTES.createLobby, 'unknown'))],
      [ROUTES.createLobby, await send(ROUTES.createLobby, exampleOf(ROUTES.createLobby, host.token))],
      [ROUTES.createLobby, await send(ROUTES.createLobby, undefined)],
      [ROUTES.createLobby, await send(ROUTES.createLobby, { token: 'x'.repeat(20_000) })],
      [ROUTES.joinLobby, await send(ROUTES.joinLobby, exampleOf(ROUTES.joinLobby, member.token), lobbyId)],
      [ROUTES.startMediation, await send(ROUTES.startMediation, exampleOf(ROUTES.startMediation, member.token), lobbyId)],
    ];
    expect(answers.map(([, answer]) => answer.status)).toEqual([200, 200, 200, 400, 409, 400, 413, 409, 409]);
    for (const [route, answer] of answers) expectDocumented(route, answer);
  });

  it('documents the limit answers: 503 past maxLobbies and 429 past the request rate', async () => {
    const { httpPort } = await startLobby({ maxLobbies: 1, messageRate: 1, messageBurst: 2 });
    const [first, second] = [await connect(httpPort), await connect(httpPort)];
    const example = operationOf(ROUTES.createLobby).requestBody?.content['application/json'].example;
    expect((await http(httpPort, 'POST', '/lobbies', { ...example, token: first.token })).status).toBe(201);
    const full = await http(httpPort, 'POST', '/lobbies', { ...example, token: second.token });
    expect(full.status).toBe(503);
    expectDocumented(ROUTES.createLobby, full);
    for (const route of routes) {
      const answer = await http(httpPort, route.method, urlOf(route, 'ZZZZZ'), route.body ? example : undefined);
      expect(answer.status).toBe(429);
      expectDocumented(route, answer);
    }
  });

  it('property: the documented request schema accepts exactly the bodies the running route does not refuse as invalid', async () => {
    const { httpPort } = await startLobby({ messageRate: 100_000, messageBurst: 100_000 });
    const client = await connect(httpPort);
    // Mostly valid fields, so that whole valid bodies are common; each field may be broken or missing.
    const field = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
      fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: invalid, weight: 1 }, { arbitrary: fc.constant(undefined), weight: 1 });
    const name = field(
      fc.stringMatching(/^\w[\w ]{0,49}$/),
      fc.oneof(fc.stringMatching(/^\w[\w ]{50,52}$/), fc.constantFrom('', ' lead', 'hy-phen', 'é'), fc.integer()),
    );
    const body = fc.record({
      token: field(
        fc.oneof(fc.constant(client.token), fc.uuid()),
        fc.oneof(fc.constant(''), fc.string({ minLength: 129, maxLength: 140 }), fc.boolean()),
      ),
      hostName: name,
      lobbyName: name,
      peerName: name,
      isPublic: field(fc.boolean(), fc.constantFrom('true', null, 1)),
      maxMembers: field(
        fc.integer({ min: 1, max: 64 }),
        fc.oneof(fc.integer({ min: -2, max: 0 }), fc.integer({ min: 65, max: 70 }), fc.double({ min: 1.1, max: 63.9, noNaN: true }), fc.constant('4')),
      ),
      extra: fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null)),
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...bodyRoutes), body, async (route, candidate) => {
        // Judged as the server sees it: after JSON (-0 is 0, undefined keys are gone).
        const documentedValid = validatorOf(requestSchemaOf(route)).safeParse(JSON.parse(JSON.stringify(candidate))).success;
        const answer = await http(httpPort, route.method, urlOf(route, 'ZZZZZ'), candidate);
        expect(schemaRefusal(answer), `${route.url} ${JSON.stringify(candidate)}: ${answer.status} ${answer.text}`).toBe(
          !documentedValid,
        );
        expectDocumented(route, answer);
      }),
      { numRuns: runs(150) },
    );
  });
});
