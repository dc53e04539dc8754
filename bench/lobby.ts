/**
 * Lobbies created and joined per second over loopback: N pairs of Orion-style clients, each pair
 * a host that creates a lobby over HTTP and a member that joins it (the host's lobby_peerConnect
 * is awaited), both the client SDK's LobbyClient. WebSocket connects are timed separately.
 *
 *   npx tsx bench/lobby.ts [pairs=2000] [concurrency=32]
 */
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { App } from '../src/app.js';
import { LobbyClient } from '../src/client/index.js';
import { configWith } from '../src/config/load.js';

const pairs = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 32);

async function inParallel(count: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

const app = new App({
  config: configWith({ logLevel: 'silent', httpPort: null, socketPort: null, udpRegistrarPort: null, udpRelayPorts: null,
    wsrelayPort: null, tcprelayPort: null, lobbyHost: '127.0.0.1', lobbyHttpPort: 0, lobbyUdpPort: 0 }),
  logger: pino({ level: 'silent' }),
  processMetrics: false,
});
await app.start();
const port = app.ports().lobby?.http as number;

const clients: LobbyClient[] = new Array(pairs * 2);
let started = performance.now();
await inParallel(pairs * 2, async (i) => {
  clients[i] = await LobbyClient.connect({ url: `http://127.0.0.1:${port}`, WebSocket });
});
const connectSeconds = (performance.now() - started) / 1000;

started = performance.now();
await inParallel(pairs, async (i) => {
  const host = clients[2 * i] as LobbyClient;
  const member = clients[2 * i + 1] as LobbyClient;
  const { lobbyId } = await host.createLobby({ hostName: `Host${i}`, lobbyName: `Lobby ${i}`, isPublic: true, maxMembers: 4 });
  const joined = host.once('lobby_peerConnect');
  await member.joinLobby(lobbyId, 'Member');
  await joined;
});
const lobbySeconds = (performance.now() - started) / 1000;

console.log(`${pairs * 2} WebSocket clients registered in ${connectSeconds.toFixed(2)}s: ${Math.round((pairs * 2) / connectSeconds)}/s`);
console.log(`${pairs} lobbies created+joined in ${lobbySeconds.toFixed(2)}s: ${Math.round(pairs / lobbySeconds)}/s (concurrency ${concurrency})`);
console.log('stats', JSON.stringify(app.front('lobby')?.stats()));
await Promise.all(clients.map((client) => client.close()));
await app.stop();
