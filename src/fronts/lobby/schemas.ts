// The shapes of the lobby API: request bodies (checked at the edge), WebSocket and UDP payloads,
// and the bodies the routes answer with. The OpenAPI document is generated from these.
import { z } from 'zod';

/** Orion's name rule: ASCII word characters, spaces allowed after the first character, at most 50. */
const name = z
  .string()
  .max(50, 'must be at most 50 characters')
  .regex(/^\w+[\w ]*$/, 'must be letters, digits or underscores, and may contain spaces after the first character');

const token = z.string().min(1).max(128).meta({ description: 'The secret from client_registered' });

export const createLobbyBody = z.object({
  token,
  hostName: name,
  lobbyName: name,
  isPublic: z.boolean(),
  maxMembers: z.number().int().min(1).max(64),
});

export const joinLobbyBody = z.object({
  token,
  peerName: name,
});

export const startMediationBody = z.object({
  token,
});

export const chatPayload = z.object({
  token,
  lobbyId: z.string().max(16),
  message: z.string().min(1).max(250),
});

export const tokenPayload = z.object({
  token,
});

/** Path parameters of the routes under /lobbies/:id. */
export const lobbyIdParams = z.object({
  id: z.string().meta({ description: 'Lobby id: 5 characters from 0-9A-Z, case-sensitive' }),
});

export const errorsBody = z.object({ errors: z.array(z.string()) });

export const pongBody = z.literal('pong');

/** The OpenAPI document, as far as a client can rely on it. */
export const openApiBody = z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) });

export const publicLobbiesBody = z.object({
  lobbies: z.array(
    z.object({
      name: z.string(),
      id: z.string(),
      currentMembers: z.number().int().meta({ description: 'Members including the host' }),
      maxMembers: z.number().int(),
    }),
  ),
});

export const createdLobbyBody = z.object({ lobbyName: z.string(), lobbyId: z.string() });

export const joinedLobbyBody = z.object({
  lobbyId: z.string(),
  lobbyName: z.string(),
  lobbyMembers: z.array(z.string()).meta({ description: 'Every name in join order, host first, the joiner last' }),
  host: z.string(),
});

/** What the server sends over the WebSocket, by method: the client SDK (src/client/) checks each message against these. */
export const serverEvents = {
  client_registered: z.object({ token: z.string() }),
  lobby_peerConnect: z.object({ lobbyId: z.string(), peerName: z.string() }),
  lobby_peerDisconnect: z.object({ lobbyId: z.string(), peerName: z.string() }),
  lobby_closed: z.object({ lobbyId: z.string(), lobbyName: z.string() }),
  lobby_messaging_received: z.object({
    lobbyId: z.string(),
    message: z.object({ timestamp: z.number(), senderName: z.string(), message: z.string() }),
  }),
  ptpMediation_send: z.object({ port: z.number().int().min(1).max(65535) }),
  ptpMediation_peersConnection_start: z.object({
    peers: z.array(z.object({ ip: z.string(), port: z.number().int().min(1).max(65535) })),
  }),
  ptpMediation_success: z.object({}),
  ptpMediation_aborted: z.object({ abortReason: z.string() }),
} as const;

/** Flattens zod issues into short user-facing lines: `field: problem`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((issue) => {
    const path = issue.path.map(String).join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
}
