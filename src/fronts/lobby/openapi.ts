/** OpenAPI 3 description of the lobby front's HTTP API, served at GET /openapi.json. */

const name = { type: 'string', maxLength: 50, pattern: '^\\w+[\\w ]*$' } as const;
const token = { type: 'string', minLength: 1, maxLength: 128, description: 'The secret from client_registered' } as const;
const errors = {
  type: 'object',
  required: ['errors'],
  properties: { errors: { type: 'array', items: { type: 'string' } } },
} as const;
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Errors' } } },
});
const badRequest = errorResponse(
  'The body fails the schema or is not JSON, or the token is unknown ("The client is unregistered. Try reconnecting.")',
);
const tooManyRequests = {
  ...errorResponse('Too many requests from this address (every route); retry after the Retry-After seconds'),
  headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait' } },
};
const lobbyIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: 'Lobby id: 5 characters from 0-9A-Z, case-sensitive',
} as const;
const jsonBody = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });

export const openApiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'noray lobby front (Orion-compatible)',
    version: '1.0.0',
    description:
      'Lobbies and peer-to-peer mediation. Every response carries Access-Control-Allow-Origin: *. ' +
      'Clients get their token from a WebSocket opened on any path of this server (message client_registered).',
  },
  paths: {
    '/ping': {
      get: {
        summary: 'Liveness check',
        responses: { '200': { description: 'pong', content: { 'text/plain': { schema: { type: 'string', enum: ['pong'] } } } } },
      },
    },
    '/lobbies': {
      get: {
        summary: 'Public lobbies, including those being mediated',
        responses: {
          '200': {
            description: 'The public lobbies',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['lobbies'],
                  properties: { lobbies: { type: 'array', items: { $ref: '#/components/schemas/PublicLobby' } } },
                },
              },
            },
          },
        },
      },
      post: {
        summary: 'Create a lobby; the caller becomes its host',
        requestBody: jsonBody({
          type: 'object',
          required: ['token', 'hostName', 'lobbyName', 'isPublic', 'maxMembers'],
          properties: {
            token,
            hostName: name,
            lobbyName: name,
            isPublic: { type: 'boolean' },
            maxMembers: { type: 'integer', minimum: 1, maximum: 64 },
          },
        }),
        responses: {
          '201': {
            description: 'Created',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['lobbyName', 'lobbyId'],
                  properties: { lobbyName: { type: 'string' }, lobbyId: { type: 'string' } },
                },
              },
            },
          },
          '400': badRequest,
          '409': errorResponse('The client is already in a lobby'),
          '429': tooManyRequests,
          '503': errorResponse('The server has as many lobbies open as it allows (NORAY_MAX_LOBBIES); try again later'),
        },
      },
    },
    '/lobbies/{id}/join': {
      post: {
        summary: 'Join a lobby',
        parameters: [lobbyIdParam],
        requestBody: jsonBody({ type: 'object', required: ['token', 'peerName'], properties: { token, peerName: name } }),
        responses: {
          '200': {
            description: 'Joined; lobbyMembers lists every name in join order, host first, the joiner last',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['lobbyId', 'lobbyName', 'lobbyMembers', 'host'],
                  properties: {
                    lobbyId: { type: 'string' },
                    lobbyName: { type: 'string' },
                    lobbyMembers: { type: 'array', items: { type: 'string' } },
                    host: { type: 'string' },
                  },
                },
              },
            },
          },
          '400': badRequest,
          '409': errorResponse(
            'Checked in this order: already in a lobby; lobby does not exist; lobby locked (mediation under way); lobby full; name taken',
          ),
          '429': tooManyRequests,
        },
      },
    },
    '/lobbies/{id}/ptp/start': {
      post: {
        summary: 'Start peer-to-peer mediation (host only); members then get ptpMediation_send over their WebSocket',
        parameters: [lobbyIdParam],
        requestBody: jsonBody({ type: 'object', required: ['token'], properties: { token } }),
        responses: {
          '200': { description: 'Mediation started (empty body)' },
          '400': badRequest,
          '409': errorResponse(
            'Checked in this order: lobby does not exist; not the host; mediation already under way; fewer than 2 members; mediation unavailable (UDP port off)',
          ),
          '429': tooManyRequests,
        },
      },
    },
    '/openapi.json': {
      get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3 document' } } },
    },
  },
  components: {
    schemas: {
      Errors: errors,
      PublicLobby: {
        type: 'object',
        required: ['name', 'id', 'currentMembers', 'maxMembers'],
        properties: {
          name: { type: 'string' },
          id: { type: 'string' },
          currentMembers: { type: 'integer', description: 'Members including the host' },
          maxMembers: { type: 'integer' },
        },
      },
    },
  },
} as const;
