import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { port, startApp } from '../helpers/app.js';
import { rejections as limitRejections, sampleOf } from '../helpers/metrics.js';
import { loginClient, loginServer, WsPeer } from '../clients/carparty.js';

const ZERO = { connections: 0, rooms: 0, clients: 0, admitted: 0 };
const disconnect = (id: string) => JSON.stringify({ action: 'disconnect', client_id: id });

async function relay(overrides: Partial<Config>, clock?: ManualClock) {
  const app = await startApp({ wsrelayPort: 0, ...overrides }, clock ? { clock } : {});
  return { app, port: port(app, 'wsrelay', 'ws') };
}

const stats = (app: App) => app.front('wsrelay')!.stats();

const rejections = (app: App, reason: string) => limitRejections(app.metrics, 'wsrelay', reason);
const closes = (app: App, reason: string) => sampleOf(app.metrics, 'noray_wsrelay_closes_total', { reason });

/** Proves the pair still relays both ways. */
async function relays(server: WsPeer, phone: WsPeer, id: string, tag: string): Promise<void> {
  phone.send({ tag });
  expect(await server.nextJson()).toEqual({ tag, client_id: id });
  server.send(`to ${tag}`);
  expect(await phone.next()).toBe(`to ${tag}`);
}

async function closeAll(app: App, peers: WsPeer[]): Promise<void> {
  await Promise.all(peers.map((peer) => peer.close()));
  await expect.poll(() => stats(app)).toEqual(ZERO);
}

describe('wsrelay connection limits', () => {
  it('answers 503 over the per-IP limit without upgrading, and frees the slot when a peer leaves', async () => {
    const { app, port: p } = await relay({ maxConnectionsPerIp: 2 });
    const server = await loginServer(p, 'IP');
    const phone = await loginClient(p, server, 'IP', '1');
    await expect(WsPeer.open(p)).rejects.toThrow(/503/);
    await expect(WsPeer.open(p)).rejects.toThrow(/503/);
    expect(await rejections(app, 'max_connections_per_ip')).toBe(2);
    expect(await rejections(app, 'max_connections')).toBe(0);
    await relays(server, phone, '1', 'still');
    expect(stats(app)).toEqual({ connections: 2, rooms: 1, clients: 1, admitted: 2 });

    await phone.close();
    expect(await server.next()).toBe(disconnect('1'));
    await expect.poll(() => stats(app).admitted).toBe(1);
    const again = await loginClient(p, server, 'IP', '2');
    await relays(server, again, '2', 'again');
    await closeAll(app, [server, again]);
  });

  it('answers the upgrade over a limit with exactly this 503 and closes', async () => {
    const { app, port: p } = await relay({ maxConnections: 1 });
    const server = await loginServer(p, 'BYTES');
    const socket = connect({ host: '127.0.0.1', port: p });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString('latin1')).toBe(
      'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
        'Content-Length: 34\r\n\r\nServer busy: too many connections\n',
    );
    expect(await rejections(app, 'max_connections')).toBe(1);
    await closeAll(app, [server]);
  });

  it('answers 503 over the total limit, counted under its own reason', async () => {
    const { app, port: p } = await relay({ maxConnections: 1 });
    const server = await loginServer(p, 'ONE');
    await expect(WsPeer.open(p)).rejects.toThrow(/503/);
    expect(await rejections(app, 'max_connections')).toBe(1);
    expect(await rejections(app, 'max_connections_per_ip')).toBe(0);
    await server.close();
    await expect.poll(() => stats(app)).toEqual(ZERO);
    const next = await loginServer(p, 'ONE');
    await closeAll(app, [next]);
  });
});

describe('wsrelay login deadline', () => {
  it('closes a silent connection with 1008 and no message, never a logged-in one', async () => {
    const { app, port: p } = await relay({ loginTimeout: 500 });
    const server = await loginServer(p, 'LATE');
    const phone = await loginClient(p, server, 'LATE', '1');
    // Opened after the others logged in: once it is closed, their deadlines have passed too.
    const silent = await WsPeer.open(p);
    expect((await silent.closed).code).toBe(1008);
    expect(silent.received).toEqual([]);
    await relays(server, phone, '1', 'after');
    expect(await rejections(app, 'login_timeout')).toBe(1);
    expect(await closes(app, 'login_timeout')).toBe(1);
    await closeAll(app, [server, phone]);
  });

  it('counts a bad login as a bad login, not as a timeout', async () => {
    const { app, port: p } = await relay({ loginTimeout: 500 });
    const bad = await WsPeer.open(p);
    bad.send('{"action":"login_nobody"}');
    expect((await bad.closed).code).toBe(1008);
    const silent = await WsPeer.open(p);
    await silent.closed;
    expect(await closes(app, 'bad_login')).toBe(1);
    expect(await rejections(app, 'login_timeout')).toBe(1);
    await expect.poll(() => stats(app)).toEqual(ZERO);
  });
});

describe('wsrelay message rate', () => {
  // A clock that never moves: the bucket never refills, so the counts are exact.
  const limits = { messageRate: 10, messageBurst: 5 };

  it('closes a flooding phone with 1008 and tells its server; fan-out does not count', async () => {
    const { app, port: p } = await relay(limits, new ManualClock());
    const server = await loginServer(p, 'FLOOD');
    const calm = await loginClient(p, server, 'FLOOD', 'calm');
    const flooder = await loginClient(p, server, 'FLOOD', 'flood');
    // The server's 4 messages (plus its login: its whole burst) reach both phones: 8 deliveries.
    for (let i = 0; i < 4; i++) server.send(`tick ${i}`);
    for (const phone of [calm, flooder]) expect(await phone.take(4)).toEqual(['tick 0', 'tick 1', 'tick 2', 'tick 3']);

    for (let i = 0; i < 20; i++) flooder.send({ i });
    expect((await flooder.closed).code).toBe(1008);
    // Its login took one token: 4 of its messages got through, then the server was told.
    const got = await server.take(5);
    expect(got.slice(0, 4).map((text) => (JSON.parse(text) as { i: number }).i)).toEqual([0, 1, 2, 3]);
    expect(got[4]).toBe(disconnect('flood'));
    calm.send({ ok: true });
    expect(await server.nextJson()).toEqual({ ok: true, client_id: 'calm' });
    expect(await rejections(app, 'message_rate')).toBe(1);
    expect(await closes(app, 'message_rate')).toBe(1);
    await closeAll(app, [server, calm]);
  });

  it('closes a flooding server with 1008, which closes its room', async () => {
    const { app, port: p } = await relay(limits, new ManualClock());
    const server = await loginServer(p, 'LOUD');
    const phone = await loginClient(p, server, 'LOUD', '1');
    const other = await loginServer(p, 'QUIET');
    const otherPhone = await loginClient(p, other, 'QUIET', '1');
    for (let i = 0; i < 20; i++) server.send(`spam ${i}`);
    expect((await server.closed).code).toBe(1008);
    expect((await phone.closed).code).toBe(1000);
    expect(phone.received).toEqual(['spam 0', 'spam 1', 'spam 2', 'spam 3']);
    await relays(other, otherPhone, '1', 'quiet');
    expect(await rejections(app, 'message_rate')).toBe(1);
    await closeAll(app, [other, otherPhone]);
  });
});

describe('wsrelay byte rate', () => {
  // A clock that never moves: the byte bucket never refills; the message rate stays out of the way.
  const limits = { byteRate: 1000, byteBurst: 10_000 };

  it('closes a phone sending big messages with 1008 (byte_rate) and leaves a calm phone of its room alone', async () => {
    const { app, port: p } = await relay(limits, new ManualClock());
    const server = await loginServer(p, 'BIG');
    const calm = await loginClient(p, server, 'BIG', 'calm');
    const flooder = await loginClient(p, server, 'BIG', 'flood');
    const blob = 'x'.repeat(3000);
    // About 3 KB each: the login and three fit in the 10 KB burst, the fourth does not.
    for (let i = 0; i < 10; i++) flooder.send({ i, blob });
    expect((await flooder.closed).code).toBe(1008);
    const got = await server.take(4);
    expect(got.slice(0, 3).map((text) => (JSON.parse(text) as { i: number }).i)).toEqual([0, 1, 2]);
    expect(got[3]).toBe(disconnect('flood'));
    await relays(server, calm, 'calm', 'small');
    expect(await rejections(app, 'byte_rate')).toBe(1);
    expect(await closes(app, 'byte_rate')).toBe(1);
    expect(await rejections(app, 'message_rate')).toBe(0);
    await closeAll(app, [server, calm]);
  });

  it('defaults to 1 MB/s with a 4 MB burst, which a game never reaches', async () => {
    const { app } = await relay({});
    expect(app.config).toMatchObject({ byteRate: 1024 * 1024, byteBurst: 4 * 1024 * 1024 });
  });
});

describe('wsrelay room limit', () => {
  it('closes a server login past maxRooms silently, like a taken code', async () => {
    const { app, port: p } = await relay({ maxRooms: 1 });
    const first = await loginServer(p, 'A');
    const phone = await loginClient(p, first, 'A', '1');
    const refused = await loginServer(p, 'B');
    expect((await refused.closed).code).toBe(1008);
    expect(refused.received).toEqual([]);
    // A taken code is still reported as such.
    const taken = await loginServer(p, 'A');
    expect((await taken.closed).code).toBe(1008);
    expect(await rejections(app, 'max_rooms')).toBe(1);
    expect(await closes(app, 'code_taken')).toBe(1);
    await relays(first, phone, '1', 'room');

    await first.close();
    await phone.closed;
    await expect.poll(() => stats(app).rooms).toBe(0);
    const second = await loginServer(p, 'B');
    const secondPhone = await loginClient(p, second, 'B', '2');
    await relays(second, secondPhone, '2', 'freed');
    await closeAll(app, [second, secondPhone]);
  });
});

describe('wsrelay slow game server', () => {
  it('drops a server that reads too slowly: its room closes and its phones get closed', async () => {
    const { app, port: p } = await relay({ wsrelaySendBuffer: 1024 * 1024 });
    const server = await loginServer(p, 'SLOWSRV');
    const phones = [
      await loginClient(p, server, 'SLOWSRV', '1'),
      await loginClient(p, server, 'SLOWSRV', '2'),
    ];
    server.ws.pause();
    const chunk = JSON.stringify({ d: 'z'.repeat(64 * 1024) });
    // 26 MB toward a reader that does not read: well past the 1 MB buffer plus what the kernel holds.
    for (let i = 0; i < 200; i++) for (const phone of phones) phone.send(chunk);
    for (const phone of phones) expect((await phone.closed).code).toBe(1000);
    server.ws.resume();
    await server.closed;
    expect(await closes(app, 'slow_reader')).toBe(1);
    expect(await rejections(app, 'slow_reader')).toBe(1);
    await expect.poll(() => stats(app)).toEqual(ZERO);
    // The code is free again.
    const next = await loginServer(p, 'SLOWSRV');
    const phone = await loginClient(p, next, 'SLOWSRV', '3');
    await relays(next, phone, '3', 'back');
    await closeAll(app, [next, phone]);
  });
});

describe('wsrelay limits leave nothing behind', () => {
  it('releases every slot and cancels every login timer, whatever closed the connection', async () => {
    const perIp = 24;
    const clock = new ManualClock();
    const { app, port: p } = await relay({ maxConnectionsPerIp: perIp, loginTimeout: 300, messageBurst: 5 }, clock);
    for (let round = 0; round < 3; round++) {
      const code = `sink${round}`;
      const sink = await loginServer(p, code);
      const mixed = Array.from({ length: 16 }, async (_, i) => {
        const peer = await WsPeer.open(p);
        peer.send({ action: 'login_client', server_code: code, client_id: String(i) });
        if (i % 2 === 0) for (let n = 0; n < 10; n++) peer.send({ n });
        else peer.ws.send(JSON.stringify({ hello: i }), () => peer.ws.terminate());
        return (await peer.closed).code;
      });
      expect(new Set(await Promise.all(mixed))).toEqual(new Set([1008, 1006]));
      // Fill what is left with silent peers until the gate refuses one, then let their deadline pass.
      const silent: WsPeer[] = [];
      for (;;) {
        const opened = await WsPeer.open(p).catch(() => null);
        if (opened === null) break;
        silent.push(opened);
      }
      expect(silent.length).toBeGreaterThan(0);
      clock.advance(300);
      for (const peer of silent) expect((await peer.closed).code).toBe(1008);
      sink.ws.terminate();
      await sink.closed;
      await expect.poll(() => stats(app), { timeout: 10_000 }).toEqual(ZERO);
    }
    // Only the ping interval is left: every login deadline was cancelled or has fired.
    expect(clock.pending).toBe(1);
    // Every slot is free again: a full set of connections is admitted.
    const server = await loginServer(p, 'FULL');
    const phones: WsPeer[] = [];
    for (let i = 1; i < perIp; i++) phones.push(await loginClient(p, server, 'FULL', String(i)));
    await expect(WsPeer.open(p)).rejects.toThrow(/503/);
    expect(stats(app)).toEqual({ connections: perIp, rooms: 1, clients: perIp - 1, admitted: perIp });
    await closeAll(app, [server, ...phones]);
    expect(clock.pending).toBe(1);
    expect(await rejections(app, 'login_timeout')).toBeGreaterThanOrEqual(3);
    expect(await rejections(app, 'message_rate')).toBe(3 * 8);
    expect(await rejections(app, 'max_connections_per_ip')).toBe(4);
  });
});

describe('wsrelay defaults', () => {
  it('keep 256 connections per IP, a 500/s rate with a 1000 burst and a 30 s login deadline', async () => {
    const { app } = await relay({});
    expect(app.config).toMatchObject({
      maxConnectionsPerIp: 256,
      messageRate: 500,
      messageBurst: 1000,
      loginTimeout: 30_000,
    });
  });
});
