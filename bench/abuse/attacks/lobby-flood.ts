/**
 * 4. Lobby listing flood: one IP opens as many Orion clients as it may (the per-IP connection cap
 * counts them) and creates a public lobby from each, then hammers GET /lobbies from 32 keep-alive
 * connections as fast as the answers come.
 */
import { Agent } from 'node:http';
import { OrionClient } from '../../../test/clients/orion.js';
import { Counters, errorText, httpRequest, loops, withTimeout, type Attack } from '../common.js';

const CLIENTS = 200; // NORAY_MAX_CONNECTIONS_PER_IP is 256 per front: leave room for the HTTP connections (fetch pool, hammers)
const HAMMERS = 32;

export const lobbyFlood: Attack = async ({ ports }) => {
  const counters = new Counters();
  const clients: OrionClient[] = [];
  for (let i = 0; i < CLIENTS; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, CLIENTS - i) }, async (_, j) => {
        try {
          const client = await withTimeout(OrionClient.connect(ports.lobbyHttp), 5000, 'lobby connect');
          clients.push(client);
          const answer = await client.createLobby({ lobbyName: `flood ${i + j}`, hostName: 'flood', isPublic: true });
          counters.add(answer.status === 200 || answer.status === 201 ? 'lobbies_created' : `create_http_${answer.status}`);
        } catch (error) {
          counters.add(`create_failed: ${errorText(error)}`);
        }
      }),
    );
  }
  const agent = new Agent({ keepAlive: true, maxSockets: HAMMERS });
  const running = loops(HAMMERS, async (_, isRunning) => {
    try {
      const answer = await httpRequest(ports.lobbyHttp, '/lobbies', { agent, timeoutMs: 5000 });
      counters.add(`list_http_${answer.status}`);
      if (answer.status === 200) counters.add('list_bytes', answer.body.length);
    } catch (error) {
      counters.add(`list_failed: ${errorText(error)}`);
      if (isRunning()) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
  return {
    stop: async () => {
      await running.stop();
      agent.destroy();
      await Promise.all(clients.map((client) => withTimeout(client.close(), 3000, 'close').catch(() => client.ws.terminate())));
      return counters.toJSON();
    },
  };
};
