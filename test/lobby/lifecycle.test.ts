// The lobby front's start and stop, built directly from LobbyOptions (no app): what shutdown says
// to clients, what a refused upgrade looks like byte for byte, and what a failed start leaves bound.
import { createSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { systemClock } from '../../src/core/clock.js';
import { LocalState } from '../../src/core/shared-state.js';
import { LobbyFront, type LobbyOptions } from '../../src/fronts/lobby/index.js';
import { LimitReporter } from '../../src/ops/limit-reporter.js';
import { OrionClient } from '../clients/orion.js';

const OPTIONS: LobbyOptions = {
  host: '127.0.0.1',
  httpPort: 0,
  udpPort: 0,
  timing: { serverConnectTimeoutMs: 60_000, connectRequestIntervalMs: 10_000, connectTimeoutMs: 60_000 },
  maxLobbies: 100,
  maxConnections: 100,
  maxConnectionsPerIp: 100,
  messageRate: 1000,
  messageBurst: 1000,
  byteRate: 1 << 20,
  byteBurst: 4 << 20,
  handshakeTimeoutMs: 5000,
  pingIntervalMs: 10_000,
  denyPrivatePeers: false,
};

const fronts: LobbyFront[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(fronts.splice(0).map((front) => front.stop()));
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function lobbyFront(overrides: Partial<LobbyOptions> = {}): LobbyFront {
  const logger = pino({ level: 'silent' });
  const metrics = new Registry();
  const front = new LobbyFront(
    { ...OPTIONS, ...overrides },
    { logger, metrics, clock: systemClock, limits: new LimitReporter(metrics, logger, systemClock), state: new LocalState() },
  );
  fronts.push(front);
  return front;
}

/** Sends a raw WebSocket upgrade request and returns every byte the server sent until it closed. */
function rawUpgrade(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

describe('lobby front lifecycle', () => {
  it('says going-away (1001 "server shutting down") to every client on stop, and releases both ports', async () => {
    const front = lobbyFront();
    await front.start();
    const { http, udp } = front.ports() as { http: number; udp: number };
    const clients = await Promise.all([OrionClient.connect(http), OrionClient.connect(http)]);
    const reasons = clients.map(
      (client) => new Promise<[number, string]>((resolve) => client.ws.once('close', (code, reason) => resolve([code, reason.toString()]))),
    );
    await front.stop();
    expect(await Promise.all(reasons)).toEqual([
      [1001, 'server shutting down'],
      [1001, 'server shutting down'],
    ]);
    expect(front.stats()).toMatchObject({ clients: 0, lobbies: 0, connections: 0, timers: 0 });
    // Both ports are free again.
    const tcp = createServer();
    servers.push(tcp);
    await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(http, '127.0.0.1', resolve));
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => again.once('error', reject).bind(udp, '127.0.0.1', resolve));
    again.close();
  });

  it('answers an upgrade over the limit with the exact 503 bytes, CORS header included', async () => {
    const front = lobbyFront({ maxConnections: 0 });
    await front.start();
    const answer = await rawUpgrade(front.ports().http as number);
    expect(answer).toBe(
      'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
        'Access-Control-Allow-Origin: *\r\nContent-Length: 34\r\n\r\nServer busy: too many connections\n',
    );
    expect(front.stats()).toMatchObject({ admitted: 0, clients: 0 });
  });

  it('refuses upgrades once stopping', async () => {
    const front = lobbyFront();
    await front.start();
    const port = front.ports().http as number;
    const stopped = front.stop();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const outcome = await new Promise<string>((resolve) => {
      ws.once('message', () => resolve('registered'));
      ws.once('error', () => resolve('refused'));
      ws.once('close', () => resolve('refused'));
    });
    await stopped;
    expect(outcome).toBe('refused');
  });

  it('a stop during start waits for it, then releases what it bound', async () => {
    const front = lobbyFront();
    const started = front.start();
    const stopped = front.stop();
    await started;
    await stopped;
    const { http } = front.ports() as { http: number };
    await expect(fetch(`http://127.0.0.1:${http}/ping`)).rejects.toThrow();
    await expect(front.start()).rejects.toThrow(/cannot start/);
  });

  it('a start that fails on the HTTP port leaves the UDP port free after stop', async () => {
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const busyPort = (taken.address() as { port: number }).port;
    const probe = createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const udpPort = probe.address().port;
    probe.close();

    const front = lobbyFront({ httpPort: busyPort, udpPort });
    await expect(front.start()).rejects.toThrow(/EADDRINUSE/);
    await front.stop();
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => again.once('error', reject).bind(udpPort, '127.0.0.1', resolve));
    again.close();
  });

  it('with the HTTP port off it binds nothing', async () => {
    const front = lobbyFront({ httpPort: null });
    await front.start();
    expect(front.ports()).toEqual({});
  });
});
