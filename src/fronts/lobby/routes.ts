// The HTTP routes of the lobby API, described once: http.ts serves them (checking bodies and
// params with these schemas) and openapi.ts documents them from the same table.
import type { z } from 'zod';
import { CREATE_LOBBY_REFUSALS, JOIN_LOBBY_REFUSALS, START_MEDIATION_REFUSALS, type Refusal } from './errors.js';
import {
  createdLobbyBody,
  createLobbyBody,
  joinedLobbyBody,
  joinLobbyBody,
  lobbyIdParams,
  openApiBody,
  pongBody,
  publicLobbiesBody,
  startMediationBody,
} from './schemas.js';

/** Larger bodies get 413 (the Fastify instance's `bodyLimit`). */
export const HTTP_BODY_LIMIT = 16 * 1024;

export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  /** Fastify syntax: `:id` is a path parameter (OpenAPI: `{id}`). */
  readonly url: string;
  readonly summary: string;
  readonly params?: z.ZodObject;
  readonly body?: z.ZodType;
  /** A body the route accepts, for the document (a real client puts its own token in). */
  readonly example?: unknown;
  readonly success: {
    readonly status: 200 | 201;
    readonly description: string;
    /** The body; none for an empty answer. */
    readonly schema?: z.ZodType;
    readonly contentType?: 'application/json' | 'text/plain';
  };
  /** Every refusal the core can answer the route with, in the order they are checked. */
  readonly refusals?: { readonly [code: string]: Refusal };
}

const ping = {
  method: 'GET',
  url: '/ping',
  summary: 'Liveness check',
  success: { status: 200, description: 'pong', schema: pongBody, contentType: 'text/plain' },
} as const satisfies RouteSpec;

const openapi = {
  method: 'GET',
  url: '/openapi.json',
  summary: 'This document',
  success: { status: 200, description: 'OpenAPI 3 document', schema: openApiBody },
} as const satisfies RouteSpec;

const listLobbies = {
  method: 'GET',
  url: '/lobbies',
  summary: 'Public lobbies, including those being mediated',
  success: { status: 200, description: 'The public lobbies', schema: publicLobbiesBody },
} as const satisfies RouteSpec;

const createLobby = {
  method: 'POST',
  url: '/lobbies',
  summary: 'Create a lobby; the caller becomes its host',
  body: createLobbyBody,
  example: { token: '6f1c1a4e-8a5b-4f0e-9c39-2d7f3b1e5a90', hostName: 'Host', lobbyName: 'My Lobby', isPublic: true, maxMembers: 4 },
  success: { status: 201, description: 'Created', schema: createdLobbyBody },
  refusals: CREATE_LOBBY_REFUSALS,
} as const satisfies RouteSpec;

const joinLobby = {
  method: 'POST',
  url: '/lobbies/:id/join',
  summary: 'Join a lobby',
  params: lobbyIdParams,
  body: joinLobbyBody,
  example: { token: '6f1c1a4e-8a5b-4f0e-9c39-2d7f3b1e5a90', peerName: 'Alice' },
  success: { status: 200, description: 'Joined', schema: joinedLobbyBody },
  refusals: JOIN_LOBBY_REFUSALS,
} as const satisfies RouteSpec;

const startMediation = {
  method: 'POST',
  url: '/lobbies/:id/ptp/start',
  summary: 'Start peer-to-peer mediation (host only); members then get ptpMediation_send over their WebSocket',
  params: lobbyIdParams,
  body: startMediationBody,
  example: { token: '6f1c1a4e-8a5b-4f0e-9c39-2d7f3b1e5a90' },
  success: { status: 200, description: 'Mediation started (empty body)' },
  refusals: START_MEDIATION_REFUSALS,
} as const satisfies RouteSpec;

export const ROUTES = { ping, openapi, listLobbies, createLobby, joinLobby, startMediation } as const;
