import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { App } from '../../src/app.js';
import { ManualClock } from '../../src/core/clock.js';
import { encodeMessage } from '../../src/fronts/lobby/codec.js';
import { SourceRateLimiter } from '../../src/core/limits/source-rate-limiter.js';
import { ABORT_REASONS, TEXTS } from '../../src/fronts/lobby/errors.js';
import { rejections } from '../helpers/metrics.js';
import { clientPool, startLobby } from './fixtures.js';
import { eventually, http } from '../clients/orion.js';

// Every test client comes from 127.0.0.1, so per-IP limits apply to all of them. A second source
// is 127.0.0.2: Linux routes all of 127.0.0.0/8 to the loopback interface.
const OTHER_SOURCE = '127.0.0.2';
const onLinux = process.platform === 'linux';

const connect = clientPool();
const lobbyApp = startLobby;
const sockets: Array<WebSocket | UdpSocket> = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) {
    if (socket instanceof WebSocket) socket.terminate();
    else socket.close();
  }
});


function lobbyRejections(app: App, reason: string): Promise<number> {
  return rejections(app.metrics, 'lobby', reason);
}

type UpgradeOutcome = { kind: 'registered' } | { kind: 'refused'; status: number; body: string };

/** Opens a WebSocket (optionally from another local address) and reports how the server answered. */
function upgrade(httpPort: number, localAddress?: string): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/`, localAddress ? { localAddress } : {});
    sockets.push(ws);
    ws.once('message', () => resolve({ kind: 'registered' }));
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ kind: 'refused', status: response.statusCode ?? 0, body }));
    });
    ws.once('error', (error) => reject(error));
  });
}

/** GET from another local address, status only. */
function getFrom(httpPort: number, path: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: httpPort, path, localAddress }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('lobby front limits: WebSocket connections', () => {
  it('counts every TCP connection at accept: one over the per-IP limit gets 503 and closes; other sources and open clients are unaffected', async () => {
    const { app, httpPort } = await lobbyApp({ maxConnectionsPerIp: 3 });
    const a = await connect(httpPort);
    const b = await connect(httpPort);
    // The third slot: the HTTP connection fetch keeps alive for the next requests.
    const created = await a.createLobby();
    expect(created.status).toBe(201);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    const refused = await upgrade(httpPort);
    expect(refused).toMatchObject({ kind: 'refused', status: 503 });
    expect(await lobbyRejections(app, 'max_connections_per_ip')).toBe(1);
    expect(await lobbyRejections(app, 'max_connections')).toBe(0);
    // The refused socket held no slot and made no client.
    expect(app.front('lobby')?.stats()).toMatchObject({ admitted: 3, clients: 2 });

    // Open clients keep working.
    expect((await b.join(lobbyId, 'B')).status).toBe(200);
    b.chat(lobbyId, 'still here');
    expect(await a.next('lobby_messaging_received')).toMatchObject({ message: { message: 'still here' } });

    if (onLinux) expect(await upgrade(httpPort, OTHER_SOURCE)).toEqual({ kind: 'registered' });

    // A slot frees when a connection ends.
    await b.close();
    await eventually(() => app.front('lobby')?.stats().admitted === (onLinux ? 3 : 2));
    await connect(httpPort);
  });

  it('answers a connection over the total limit with 503 before reading its request, counted as max_connections', async () => {
    const { app, httpPort } = await lobbyApp({ maxConnections: 2 });
    const only = await connect(httpPort);
    expect((await only.createLobby()).status).toBe(201);
    expect(await upgrade(httpPort)).toMatchObject({ kind: 'refused', status: 503 });
    expect(await lobbyRejections(app, 'max_connections')).toBe(1);
    // The two admitted connections (the WebSocket, the kept-alive HTTP one) still serve.
    expect(app.front('lobby')?.stats()).toMatchObject({ admitted: 2, clients: 1 });
    expect((await only.createLobby({ lobbyName: 'second' })).status).toBe(409);
  });

  it('closes a connection that floods messages with 1008 after its burst; the other members are unaffected', async () => {
    // One token a second: the burst of 5 is all the flooder gets while its 50 frames arrive.
    const { app, httpPort } = await lobbyApp({ messageRate: 1, messageBurst: 5 });
    const calm = await connect(httpPort);
    const flooder = await connect(httpPort);
    const created = await calm.createLobby({ hostName: 'Calm' });
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    expect((await flooder.join(lobbyId, 'Flooder')).status).toBe(200);
    for (let i = 0; i < 50; i++) flooder.chat(lobbyId, `spam ${i}`);
    expect(await flooder.waitClosed()).toBe(1008);
    expect(await calm.next('lobby_peerDisconnect')).toEqual({ lobbyId, peerName: 'Flooder' });
    expect(await lobbyRejections(app, 'message_rate')).toBe(1);

    calm.chat(lobbyId, 'mine');
    // Calm's own chat comes back to it after whatever the flooder got in before the close.
    let echo: { message: { senderName: string; message: string } };
    do echo = (await calm.next('lobby_messaging_received')) as typeof echo;
    while (echo.message.senderName !== 'Calm');
    expect(echo.message.message).toBe('mine');
    // Every chat the server took from the flooder came before the close, so before calm's own echo.
    const fromFlooder = calm.received.filter(
      (m) => m.method === 'lobby_messaging_received' && (m.payload.message as { senderName: string }).senderName === 'Flooder',
    );
    expect(fromFlooder.length).toBeGreaterThanOrEqual(5);
    expect(fromFlooder.length).toBeLessThan(10);
    expect(calm.closed).toBe(false);
  });
});

describe('lobby front limits: WebSocket bytes', () => {
  it('closes a connection sending too many bytes with 1008 (byte_rate); the other members are unaffected', async () => {
    // One byte a second: the 1 KB burst is all the flooder gets while its 250-character chats arrive.
    const { app, httpPort } = await lobbyApp({ byteRate: 1, byteBurst: 1024 });
    const calm = await connect(httpPort);
    const flooder = await connect(httpPort);
    const created = await calm.createLobby({ hostName: 'Calm' });
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    expect((await flooder.join(lobbyId, 'Flooder')).status).toBe(200);
    const big = 'x'.repeat(250);
    for (let i = 0; i < 20; i++) flooder.chat(lobbyId, big);
    expect(await flooder.waitClosed()).toBe(1008);
    expect(await calm.next('lobby_peerDisconnect')).toEqual({ lobbyId, peerName: 'Flooder' });
    expect(await lobbyRejections(app, 'byte_rate')).toBe(1);
    expect(await lobbyRejections(app, 'message_rate')).toBe(0);

    calm.chat(lobbyId, 'mine');
    let echo: { message: { senderName: string; message: string } };
    do echo = (await calm.next('lobby_messaging_received')) as typeof echo;
    while (echo.message.senderName !== 'Calm');
    expect(echo.message.message).toBe('mine');
    const fromFlooder = calm.received.filter(
      (m) => m.method === 'lobby_messaging_received' && (m.payload.message as { senderName: string }).senderName === 'Flooder',
    );
    expect(fromFlooder.length).toBeGreaterThanOrEqual(1);
    expect(fromFlooder.length).toBeLessThan(5);
    expect(calm.closed).toBe(false);
  });
});

describe('lobby front limits: HTTP', () => {
  it('answers 429 with errors and Retry-After past the per-IP request rate; other sources are unaffected', async () => {
    const { app, httpPort } = await lobbyApp({ messageRate: 1, messageBurst: 3 });
    for (let i = 0; i < 3; i++) expect((await http(httpPort, 'GET', '/ping')).status).toBe(200);
    const limited = await http(httpPort, 'GET', '/lobbies');
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ errors: [TEXTS.rateLimited] });
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.headers.get('access-control-allow-origin')).toBe('*');
    const post = await http(httpPort, 'POST', '/lobbies', { token: 'x' });
    expect(post.status).toBe(429);
    expect(await lobbyRejections(app, 'http_rate')).toBe(2);
    if (onLinux) expect(await getFrom(httpPort, '/ping', OTHER_SOURCE)).toBe(200);
  });

  it('refuses creating a lobby past maxLobbies with 503 and errors; joining and closing still work', async () => {
    const { app, httpPort } = await lobbyApp({ maxLobbies: 1 });
    const first = await connect(httpPort);
    const second = await connect(httpPort);
    const joiner = await connect(httpPort);
    const created = await first.createLobby();
    expect(created.status).toBe(201);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;

    const refused = await second.createLobby();
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ errors: [TEXTS.tooManyLobbies] });
    expect(await lobbyRejections(app, 'max_lobbies')).toBe(1);
    expect((await joiner.join(lobbyId, 'J')).status).toBe(200);

    // The slot frees when the lobby closes.
    await first.close();
    await joiner.next('lobby_closed');
    expect((await second.createLobby()).status).toBe(201);
  });
});

describe('lobby front limits: UDP', () => {
  it('with denyPrivatePeers, ignores ptpMediation_connect from loopback (counted) and the mediation times out', async () => {
    const { app, httpPort, udpPort } = await lobbyApp({ denyPrivatePeers: true, lobbyServerConnectTimeout: 300 });
    const host = await connect(httpPort, udpPort);
    const member = await connect(httpPort, udpPort);
    const lobbyId = ((await host.createLobby()).body as { lobbyId: string }).lobbyId;
    expect((await member.join(lobbyId, 'M')).status).toBe(200);
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await host.next('ptpMediation_send');
    await host.sendUdp();
    await member.sendUdp();
    expect(await host.next('ptpMediation_aborted')).toEqual({ abortReason: ABORT_REASONS.serverConnectTimeout });
    expect(host.count('ptpMediation_peersConnection_start')).toBe(0);
    await eventually(async () => (await lobbyRejections(app, 'denied_peer')) === 2);
    // Lobbies and chat are unaffected.
    member.chat(lobbyId, 'ok');
    expect(await host.next('lobby_messaging_received')).toMatchObject({ message: { message: 'ok' } });
  });

  it('never answers a datagram, whatever it holds (no amplification)', async () => {
    const { httpPort, udpPort } = await lobbyApp();
    const host = await connect(httpPort, udpPort);
    const member = await connect(httpPort, udpPort);
    const lobbyId = ((await host.createLobby()).body as { lobbyId: string }).lobbyId;
    expect((await member.join(lobbyId, 'M')).status).toBe(200);
    expect((await host.startMediation(lobbyId)).status).toBe(200);

    const probe = createSocket('udp4');
    sockets.push(probe);
    const answers: Buffer[] = [];
    probe.on('message', (datagram) => answers.push(datagram));
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', () => resolve()));
    const send = (datagram: Buffer | string) =>
      new Promise<void>((resolve, reject) => probe.send(datagram, udpPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    for (const datagram of [
      '',
      'garbage',
      encodeMessage('ptpMediation_connect', {}),
      encodeMessage('ptpMediation_connect', { token: 'unknown' }),
      encodeMessage('something_else', { token: host.token }),
      Buffer.alloc(4000, 'a'),
      encodeMessage('ptpMediation_connect', { token: host.token }),
      encodeMessage('ptpMediation_connect', { token: member.token }),
      // After capture: ignored as a duplicate.
      encodeMessage('ptpMediation_connect', { token: member.token }),
    ]) {
      await send(datagram);
    }
    // The last real packets completed capture; the server handled every earlier datagram before them.
    await host.next('ptpMediation_peersConnection_start');
    await member.next('ptpMediation_peersConnection_start');
    // Follow with one more round trip through the server before looking at the probe's inbox.
    host.chat(lobbyId, 'sync');
    await host.next('lobby_messaging_received');
    expect(answers).toEqual([]);
  });
});

describe('SourceRateLimiter', () => {
  it('limits each source on its own bucket', () => {
    const clock = new ManualClock();
    const limiter = new SourceRateLimiter(10, 2, clock);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false]);
    expect(limiter.take('b')).toBe(true);
    clock.advance(100);
    expect(limiter.take('a')).toBe(true);
    expect(limiter.take('a')).toBe(false);
  });

  it('forgets sources idle long enough to have refilled, so memory follows the busy sources only', () => {
    const clock = new ManualClock();
    const limiter = new SourceRateLimiter(10, 5, clock); // refills from its deepest debt (-5) in 1000 ms
    for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(1000);
    clock.advance(999);
    limiter.take('busy');
    expect(limiter.size).toBe(1001);
    clock.advance(1);
    limiter.take('busy');
    expect(limiter.size).toBe(1);
  });

  it('charges a source past its tokens into a debt of one burst: trying while refused prolongs the refusal', () => {
    const clock = new ManualClock();
    const limiter = new SourceRateLimiter(10, 2, clock);
    expect(limiter.has('a')).toBe(true);
    limiter.charge('a');
    limiter.charge('a');
    expect(limiter.has('a')).toBe(false);
    for (let i = 0; i < 10; i++) limiter.charge('a'); // the debt stops at -2
    clock.advance(300); // -2 + 3 = 1 token
    expect(limiter.has('a')).toBe(true);
    limiter.charge('a');
    clock.advance(99);
    expect(limiter.has('a')).toBe(false);
    expect(limiter.has('unknown')).toBe(true);
    expect(limiter.size).toBe(1);
  });

  it('stays within its bound when many sources are busy at once', () => {
    const clock = new ManualClock();
    const limiter = new SourceRateLimiter(1, 1, clock, 100);
    for (let i = 0; i < 10_000; i++) limiter.take(`source-${i}`);
    expect(limiter.size).toBe(100);
    // The most recently seen are kept: the last source is still limited.
    expect(limiter.take('source-9999')).toBe(false);
  });
});
