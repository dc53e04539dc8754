// Connections that never finish their handshake: silent or half-sent HTTP requests and upgrades
// are closed by a deadline, every HTTP listener gates connections at accept (before a byte is
// parsed), and a lobby WebSocket that stops answering pings is cut off and leaves its lobby.
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { WebSocket } from 'ws';
import { loginClient, loginServer } from '../clients/carparty.js';
import { eventually, OrionClient } from '../clients/orion.js';
import { port, startApp } from '../helpers/app.js';
import { rejections } from '../helpers/metrics.js';

const onLinux = process.platform === 'linux';
const OTHER_SOURCE = '127.0.0.2';

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

interface Outcome {
  /** What the server wrote before closing. */
  readonly text: string;
  /** Milliseconds from connect to close. */
  readonly closedAfterMs: number;
}

/** Opens a TCP connection, writes `send` (if any) and resolves when the server closes it. */
function hold(tcpPort: number, send = '', localAddress?: string): { socket: Socket; closed: Promise<Outcome> } {
  const started = Date.now();
  const socket = tcpConnect({ port: tcpPort, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  sockets.push(socket);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  if (send !== '') socket.once('connect', () => socket.write(send));
  const closed = new Promise<Outcome>((resolve) => socket.once('close', () => resolve({ text, closedAfterMs: Date.now() - started })));
  return { socket, closed };
}

const HANDSHAKE_MS = 400;

/** Connections a listener holds now: a front's, or the ops server's. */
function admitted(app: App, front: string): number | undefined {
  return front === 'ops' ? app.opsStats()?.admitted : app.front(front)?.stats().admitted;
}

describe.each([
  // probe: a request the listener answers (wsrelay: 426 to any plain request).
  { front: 'wsrelay', role: 'ws', config: { wsrelayPort: 0 }, probe: '/ping' },
  { front: 'lobby', role: 'http', config: { lobbyHttpPort: 0, lobbyUdpPort: null }, probe: '/ping' },
  { front: 'ops', role: 'http', config: { httpPort: 0 }, probe: '/health' },
])('$front: handshake deadlines', ({ front, role, config, probe }) => {
  it('closes a silent connection, a half-sent request and a half-sent upgrade after the deadline with 408', async () => {
    const app = await startApp({ ...config, handshakeTimeout: HANDSHAKE_MS });
    const tcpPort = port(app, front, role);
    const silent = hold(tcpPort);
    const half = hold(tcpPort, 'GET /lobbies HTTP/1.1\r\nHost: x\r\n');
    const upgrade = hold(tcpPort, 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
    for (const { closed } of [silent, half, upgrade]) {
      const outcome = await closed;
      expect(outcome.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
      expect(outcome.closedAfterMs).toBeLessThan(HANDSHAKE_MS + 1500);
    }
    await eventually(() => admitted(app, front) === 0);
  });

  it('closes a kept-alive connection left idle for the deadline', async () => {
    const app = await startApp({ ...config, handshakeTimeout: HANDSHAKE_MS });
    const idle = hold(port(app, front, role), `GET ${probe} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const outcome = await idle.closed;
    // One answer (426 from wsrelay, 200 from the others), then the close.
    expect(outcome.text).toMatch(/^HTTP\/1\.1 (200|426) /);
    expect(outcome.closedAfterMs).toBeLessThan(HANDSHAKE_MS + 1500);
  });

  it('gates at accept: past the per-IP limit a connection is answered 503 at once, unread; another source still gets in', async () => {
    const app = await startApp({ ...config, handshakeTimeout: 60_000, maxConnectionsPerIp: 5 });
    const tcpPort = port(app, front, role);
    const held = Array.from({ length: 5 }, () => hold(tcpPort));
    await eventually(() => admitted(app, front) === 5);
    const refused = hold(tcpPort);
    const outcome = await refused.closed;
    expect(outcome.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(outcome.closedAfterMs).toBeLessThan(1500);
    expect(await rejections(app.metrics, front, 'max_connections_per_ip')).toBe(1);
    if (onLinux) {
      const other = hold(tcpPort, `GET ${probe} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, OTHER_SOURCE);
      expect((await other.closed).text).toMatch(/^HTTP\/1\.1 (200|426) /);
    }
    for (const { socket } of held) socket.destroy();
    await eventually(() => admitted(app, front) === 0);
    expect(admitted(app, front)).toBe(0);
  });
});

describe('wsrelay: well-behaved peers under a silent-connection flood', () => {
  it('logs in and relays while one source holds its whole per-IP share of silent sockets', async () => {
    const app = await startApp({ wsrelayPort: 0, maxConnectionsPerIp: 50 });
    const wsPort = port(app, 'wsrelay', 'ws');
    const flood = Array.from({ length: 60 }, () => hold(wsPort, '', onLinux ? OTHER_SOURCE : undefined));
    await eventually(async () => (await rejections(app.metrics, 'wsrelay', 'max_connections_per_ip')) === (onLinux ? 10 : 10));
    if (!onLinux) {
      for (const { socket } of flood) socket.destroy();
      await eventually(() => app.front('wsrelay')?.stats().admitted === 0);
    }
    const server = await loginServer(wsPort, 'ROOM');
    const phone = await loginClient(wsPort, server, 'ROOM', 'p1');
    phone.send({ hello: 1 });
    expect(await server.nextJson()).toMatchObject({ hello: 1, client_id: 'p1' });
    await Promise.all([server.close(), phone.close()]);
  });
});

describe('lobby: WebSocket liveness', () => {
  it('cuts off a client that answers no pings, so its lobby does not stay open; a live client stays', async () => {
    const app = await startApp({ lobbyHttpPort: 0, lobbyUdpPort: null, lobbyPingInterval: 100 });
    const httpPort = port(app, 'lobby', 'http');
    const live = await OrionClient.connect(httpPort);
    // A half-open socket as the server sees it: the client never answers a ping.
    const dead = await OrionClient.connect(httpPort, null, '/', { autoPong: false });
    const created = await dead.createLobby({ isPublic: true });
    expect(created.status).toBe(201);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    expect((await live.join(lobbyId, 'Live')).status).toBe(200);
    await eventually(() => app.front('lobby')?.stats().clients === 1, 3000);
    // The host's departure closes the lobby for the live member, as on a disconnect.
    expect(await live.next('lobby_closed')).toMatchObject({ lobbyId });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
    await live.close();
  });
});
