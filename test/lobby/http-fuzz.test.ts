// Arbitrary HTTP bodies and near-valid requests against the lobby API: always a 2xx/4xx answer
// with the documented shape, never a 5xx, and the server keeps serving.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { port, startApp } from '../helpers/app.js';
import { runs } from '../helpers/fuzz.js';
import { http, OrionClient } from '../clients/orion.js';

const name = fc.oneof(fc.string({ maxLength: 60 }), fc.stringMatching(/^\w[\w ]{0,49}$/), fc.constant(''), fc.integer());

describe('lobby HTTP under arbitrary bodies', () => {
  it('never answers 5xx; 4xx answers carry an errors array or a plain status', async () => {
    const app = await startApp({ lobbyHttpPort: 0, lobbyUdpPort: 0, messageRate: 100_000, messageBurst: 100_000 });
    const httpPort = port(app, 'lobby', 'http');
    const client = await OrionClient.connect(httpPort);
    const created = await http(httpPort, 'POST', '/lobbies', {
      token: client.token,
      hostName: 'host',
      lobbyName: 'fuzz lobby',
      isPublic: true,
      maxMembers: 4,
    });
    expect(created.status).toBe(201);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    const body = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.json({ maxDepth: 3 }),
      fc
        .record(
          {
            token: fc.oneof(fc.constant(client.token), fc.uuid(), fc.string({ maxLength: 40 }), fc.constant(null)),
            hostName: name,
            lobbyName: name,
            peerName: name,
            isPublic: fc.oneof(fc.boolean(), fc.string({ maxLength: 5 })),
            maxMembers: fc.oneof(fc.integer({ min: -5, max: 80 }), fc.double(), fc.string({ maxLength: 3 })),
          },
          { requiredKeys: [] },
        )
        .map((value) => JSON.stringify(value)),
    );
    const path = fc.constantFrom('/lobbies', `/lobbies/${lobbyId}/join`, `/lobbies/${lobbyId}/ptp/start`, '/lobbies/ZZZZZ/join');
    await fc.assert(
      fc.asyncProperty(path, body, async (target, raw) => {
        const answer = await http(httpPort, 'POST', target, undefined, { rawBody: raw });
        expect(answer.status).toBeLessThan(500);
        if (answer.status === 400 || answer.status === 409) {
          const errors = (answer.body as { errors?: unknown } | undefined)?.errors;
          if (errors !== undefined) expect(Array.isArray(errors)).toBe(true);
        }
      }),
      { numRuns: runs(150) },
    );
    const ping = await http(httpPort, 'GET', '/ping');
    expect(ping.text).toBe('pong');
    client.ws.close();
  });
});
