/**
 * Lobbies created and joined per second over loopback: N pairs of Orion-style clients, each pair
 * a host that creates a lobby over HTTP and a member that joins it (the host's lobby_peerConnect
 * is awaited). WebSocket connects are timed separately.
 *
 *   npx tsx bench/lobby.ts [pairs=2000] [concurrency=32]
 */
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { App } from '../src/app.js';
import { configWith } from '../src/config/load.js';
import { decodeMessage } from '../src/fronts/lobby/codec.js';

const pairs = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 32);

interface Client {
  ws: WebSocket;
  token: string;
  waitFor(method: string): Promise<void>;
}

function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const waiting = new Map<string, () => void>();
    ws.on('error', reject);
    ws.on('message', (data) => {
      const message = decodeMessage(data as Buffer);
      if (!message.ok) return;
      if (message.method === 'client_registered') {
        resolve({
          ws,
          token: String(message.payload.token),
          waitFor: (method) => new Promise<void>((done) => waiting.set(method, done)),
        });
      }
      waiting.get(message.method)?.();
      waiting.delete(message.method);
    });
  });
}

async function post(port: number, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status >= 300) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

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

const clients: Client[] = new Array(pairs * 2);
let started = performance.now();
await inParallel(pairs * 2, async (i) => {
  clients[i] = await connect(port);
});
const connectSeconds = (performance.now() - started) / 1000;

started = performance.now();
await inParallel(pairs, async (i) => {
  const host = clients[2 * i] as Client;
  const member = clients[2 * i + 1] as Client;
  const { lobbyId } = (await post(port, '/lobbies', {
    token: host.token, hostName: `Host${i}`, lobbyName: `Lobby ${i}`, isPublic: true, maxMembers: 4,
  })) as { lobbyId: string };
  const joined = host.waitFor('lobby_peerConnect');
  await post(port, `/lobbies/${lobbyId}/join`, { token: member.token, peerName: 'Member' });
  await joined;
});
const lobbySeconds = (performance.now() - started) / 1000;

console.log(`${pairs * 2} WebSocket clients registered in ${connectSeconds.toFixed(2)}s: ${Math.round((pairs * 2) / connectSeconds)}/s`);
console.log(`${pairs} lobbies created+joined in ${lobbySeconds.toFixed(2)}s: ${Math.round(pairs / lobbySeconds)}/s (concurrency ${concurrency})`);
console.log('stats', JSON.stringify(app.front('lobby')?.stats()));
for (const client of clients) client.ws.terminate();
await app.stop();
