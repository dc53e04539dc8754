import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ManualClock } from '../../src/core/clock.js';
import { port, startApp } from '../helpers/app.js';
import { loginClient, loginServer, WsPeer } from '../clients/carparty.js';

async function relay(overrides = {}) {
  const app = await startApp({ wsrelayPort: 0, ...overrides });
  return { app, port: port(app, 'wsrelay', 'ws') };
}

const connect = (id: string) => JSON.stringify({ action: 'connect', client_id: id });
const disconnect = (id: string) => JSON.stringify({ action: 'disconnect', client_id: id });

describe('wsrelay login', () => {
  it('tells the server about a client exactly, and relays both ways', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'SNEK');
    const phone = await WsPeer.open(p);
    phone.send('{"action":"login_client","server_code":"SNEK","client_id":"467123746","extra":1}');
    expect(await server.next()).toBe('{"action":"connect","client_id":"467123746"}');
    phone.send({ steer: -0.5, client_id: 'forged' });
    expect(await server.nextJson()).toEqual({ steer: -0.5, client_id: '467123746' });
    const text = '{ "lap" :  3,\n"x":[1,2.50]}';
    server.send(text);
    expect(await phone.next()).toBe(text);
    await phone.close();
    expect(await server.next()).toBe('{"action":"disconnect","client_id":"467123746"}');
  });

  it('accepts any URL path', async () => {
    const { port: p } = await relay();
    const server = await WsPeer.open(p, '/some/deep/path?x=1');
    server.send({ action: 'login_server', server_code: 'A' });
    const phone = await WsPeer.open(p, '/other');
    phone.send({ action: 'login_client', server_code: 'A', client_id: '1' });
    expect(await server.next()).toBe(connect('1'));
  });

  it('accepts a binary first frame holding UTF-8 JSON as the login', async () => {
    const { port: p } = await relay();
    const server = await WsPeer.open(p);
    server.send(Buffer.from(JSON.stringify({ action: 'login_server', server_code: 'B' })), true);
    const phone = await WsPeer.open(p);
    phone.send(Buffer.from(JSON.stringify({ action: 'login_client', server_code: 'B', client_id: 'é' })), true);
    expect(await server.next()).toBe(connect('é'));
    server.send('hello');
    expect(await phone.next()).toBe('hello');
  });

  it.each([
    ['not JSON', 'login please'],
    ['binary that is not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
    ['not an object', '["login_server","X"]'],
    ['a JSON string', '"login_server"'],
    ['an unknown action', '{"action":"login","server_code":"X"}'],
    ['an action in the wrong case', '{"action":"Login_Server","server_code":"X"}'],
    ['no server_code', '{"action":"login_server"}'],
    ['a numeric server_code', '{"action":"login_server","server_code":5}'],
    ['a client without client_id', '{"action":"login_client","server_code":"OPEN"}'],
    ['a client with a numeric client_id', '{"action":"login_client","server_code":"OPEN","client_id":467}'],
    ['a client for an unknown code', '{"action":"login_client","server_code":"NOPE","client_id":"1"}'],
    ['a server for a taken code', '{"action":"login_server","server_code":"OPEN"}'],
  ])('closes silently on %s', async (_what, login) => {
    const { app, port: p } = await relay();
    const server = await loginServer(p, 'OPEN');
    const bad = await WsPeer.open(p);
    bad.send(login, Buffer.isBuffer(login));
    const closed = await bad.closed;
    expect(closed.code).not.toBe(1006);
    expect(bad.received).toEqual([]);
    // The first server is unaffected and got no notice.
    const phone = await loginClient(p, server, 'OPEN', 'ok');
    server.send('still here');
    expect(await phone.next()).toBe('still here');
    expect(server.received).toEqual([connect('ok')]);
    expect(app.front('wsrelay')!.stats()).toMatchObject({ rooms: 1, clients: 1 });
  });

  it('frees a code as soon as its server leaves', async () => {
    const { app, port: p } = await relay();
    const first = await loginServer(p, 'CODE');
    const phone = await loginClient(p, first, 'CODE', '1');
    await first.close();
    expect((await phone.closed).code).toBe(1000);
    const second = await loginServer(p, 'CODE');
    await loginClient(p, second, 'CODE', '2');
    expect(app.front('wsrelay')!.stats()).toMatchObject({ rooms: 1, clients: 1 });
  });

  it('lets client ids repeat', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'R');
    const a = await loginClient(p, server, 'R', 'same');
    const b = await loginClient(p, server, 'R', 'same');
    a.send({ from: 'a' });
    b.send({ from: 'b' });
    const got = [await server.nextJson(), await server.nextJson()];
    expect(got).toContainEqual({ from: 'a', client_id: 'same' });
    expect(got).toContainEqual({ from: 'b', client_id: 'same' });
  });
});

describe('wsrelay routing', () => {
  it('targets receiver_id as a string; numbers, null and unknown ids reach nobody', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'T');
    const a1 = await loginClient(p, server, 'T', '1');
    const a2 = await loginClient(p, server, 'T', '1');
    const b = await loginClient(p, server, 'T', '2');
    const forOne = '{"receiver_id":"1","any_json_here":"dont_care"}';
    server.send(forOne);
    server.send('{"receiver_id":1}');
    server.send('{"receiver_id":null}');
    server.send('{"receiver_id":"3"}');
    server.send('{"receiver_id":"2","n":12345678901234567890}');
    server.send('"end"');
    expect(await a1.take(2)).toEqual([forOne, '"end"']);
    expect(await a2.take(2)).toEqual([forOne, '"end"']);
    expect(await b.take(2)).toEqual(['{"receiver_id":"2","n":12345678901234567890}', '"end"']);
  });

  it('sends non-objects and invalid JSON to every client unchanged', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'T');
    const phones = [await loginClient(p, server, 'T', '1'), await loginClient(p, server, 'T', '2')];
    const texts = ['[1,2]', '42', 'null', 'not json at all', '{"receiver_id":', '', ' {"a":1} '];
    for (const text of texts) server.send(text);
    for (const phone of phones) expect(await phone.take(texts.length)).toEqual(texts);
  });

  it('keeps integers of any size exact in client messages', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'N');
    const phone = await loginClient(p, server, 'N', '9');
    phone.send(
      '{"big":123456789012345678901234567890,"id":9007199254740993,"neg":-18446744073709551617,"f":1.50,"e":1e400,"nested":[{"x":9223372036854775807}]}',
    );
    const text = await server.next();
    for (const number of [
      '123456789012345678901234567890',
      '9007199254740993',
      '-18446744073709551617',
      '1.50',
      '1e400',
      '9223372036854775807',
    ]) {
      expect(text).toContain(`:${number}`);
    }
    expect(text).toContain('"client_id":"9"');
  });

  it('drops valid non-object JSON from a client and keeps it; invalid JSON closes it', async () => {
    const { app, port: p } = await relay();
    const server = await loginServer(p, 'J');
    const phone = await loginClient(p, server, 'J', '5');
    phone.send('[1,2,3]');
    phone.send('"text"');
    phone.send('17');
    phone.send({ ok: true });
    expect(await server.nextJson()).toEqual({ ok: true, client_id: '5' });
    phone.send('{"broken":');
    expect((await phone.closed).code).toBe(1007);
    expect(await server.next()).toBe(disconnect('5'));
    expect(app.front('wsrelay')!.stats()).toMatchObject({ clients: 0 });
  });

  it('drops binary frames after login in both directions and keeps both connections', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'BIN');
    const phone = await loginClient(p, server, 'BIN', '1');
    phone.send(Buffer.from('{"a":1}'), true);
    server.send(Buffer.from('{"b":2}'), true);
    phone.send({ after: 1 });
    server.send('after');
    expect(await server.nextJson()).toEqual({ after: 1, client_id: '1' });
    expect(await phone.next()).toBe('after');
    expect(phone.binaries).toEqual([]);
    expect(server.binaries).toEqual([]);
  });

  it('never sends a client anything but relayed server messages', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'Q');
    const a = await loginClient(p, server, 'Q', 'a');
    const b = await loginClient(p, server, 'Q', 'b');
    a.send({ hi: 1 });
    a.send('[]');
    await server.next();
    await b.close();
    expect(await server.next()).toBe(disconnect('b'));
    server.send('only this');
    expect(await a.next()).toBe('only this');
    expect(a.received).toEqual(['only this']);
  });

  it('keeps the server when it sends with no clients (also after all clients left)', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'EMPTY');
    server.send('nobody hears this');
    server.send('{"receiver_id":"x"}');
    const phone = await loginClient(p, server, 'EMPTY', '1');
    await phone.close();
    expect(await server.next()).toBe(disconnect('1'));
    server.send('still nobody');
    const late = await loginClient(p, server, 'EMPTY', '2');
    server.send('welcome');
    expect(await late.next()).toBe('welcome');
  });

  it('closes every client with a close frame when the server leaves', async () => {
    const { app, port: p } = await relay();
    const server = await loginServer(p, 'BYE');
    const phones = await Promise.all(['1', '2', '3'].map((id) => WsPeer.open(p)));
    for (const [i, phone] of phones.entries()) {
      phone.send({ action: 'login_client', server_code: 'BYE', client_id: String(i) });
    }
    await server.take(3);
    server.ws.terminate();
    for (const phone of phones) expect((await phone.closed).code).toBe(1000);
    for (const phone of phones) expect(phone.received).toEqual([]);
    await expect.poll(() => app.front('wsrelay')!.stats()).toEqual({ connections: 0, rooms: 0, clients: 0, admitted: 0 });
  });

  it('fans out to 50 phones in one room exactly once and in order', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'FAN');
    const phones: WsPeer[] = [];
    for (let i = 0; i < 50; i++) phones.push(await loginClient(p, server, 'FAN', `p${i}`));
    const count = 500;
    const sent: string[] = [];
    for (let i = 0; i < count; i++) {
      const text = JSON.stringify({ seq: i, pad: 'x'.repeat(i % 50) });
      sent.push(text);
      server.send(text);
    }
    server.send('"done"');
    for (const phone of phones) {
      expect(await phone.take(count + 1)).toEqual([...sent, '"done"']);
      expect(phone.unread).toBe(0);
    }
  });

  it('keeps many rooms isolated', async () => {
    const { app, port: p } = await relay();
    const rooms = await Promise.all(
      Array.from({ length: 20 }, async (_, r) => {
        const server = await loginServer(p, `ROOM${r}`);
        const phones: WsPeer[] = [];
        for (let i = 0; i < 3; i++) phones.push(await loginClient(p, server, `ROOM${r}`, String(i)));
        return { server, phones, r };
      }),
    );
    expect(app.front('wsrelay')!.stats()).toMatchObject({ rooms: 20, clients: 60 });
    for (const { server, phones, r } of rooms) {
      server.send(`room ${r}`);
      phones[0]!.send({ room: r });
    }
    for (const { server, phones, r } of rooms) {
      for (const phone of phones) expect(await phone.next()).toBe(`room ${r}`);
      expect(await server.nextJson()).toEqual({ room: r, client_id: '0' });
    }
    for (const { server, phones } of rooms) {
      expect(server.unread).toBe(0);
      for (const phone of phones) expect(phone.unread).toBe(0);
    }
  });
});

describe('wsrelay limits', () => {
  it('relays a 1 MiB message and closes a larger one with 1009', async () => {
    const { port: p } = await relay();
    const server = await loginServer(p, 'BIG');
    const phone = await loginClient(p, server, 'BIG', '1');
    const mib = 1024 * 1024;
    const big = `"${'a'.repeat(mib - 2)}"`;
    server.send(big);
    expect((await phone.next()).length).toBe(mib);
    const fromPhone = `{"d":"${'b'.repeat(mib - 8)}"}`;
    expect(Buffer.byteLength(fromPhone)).toBe(mib);
    phone.send(fromPhone);
    expect(JSON.parse(await server.next())).toEqual({ d: 'b'.repeat(mib - 8), client_id: '1' });
    phone.send(`${fromPhone} `);
    expect((await phone.closed).code).toBe(1009);
    expect(await server.next()).toBe(disconnect('1'));
    server.send(`${big} `);
    expect((await server.closed).code).toBe(1009);
  });

  it('disconnects a client that cannot keep up and tells its server', async () => {
    // The server sends 25 MB at once: far past the default byte burst, which is not under test here.
    const { app, port: p } = await relay({ wsrelaySendBuffer: 1024 * 1024, byteBurst: 64 * 1024 * 1024 });
    const server = await loginServer(p, 'SLOW');
    const slow = await loginClient(p, server, 'SLOW', 'slow');
    const fast = await loginClient(p, server, 'SLOW', 'fast');
    slow.ws.pause();
    const chunk = `"${'z'.repeat(64 * 1024)}"`;
    const count = 400;
    for (let i = 0; i < count; i++) server.send(chunk);
    server.send('"end"');
    expect(await server.next()).toBe(disconnect('slow'));
    const got = await fast.take(count + 1);
    expect(got.at(-1)).toBe('"end"');
    expect(got).toHaveLength(count + 1);
    slow.ws.resume();
    await slow.closed;
    expect(app.front('wsrelay')!.stats()).toMatchObject({ clients: 1 });
    const closes = await app.metrics.getSingleMetric('noray_wsrelay_closes_total')!.get();
    expect(closes.values).toContainEqual(expect.objectContaining({ labels: { reason: 'slow_reader' }, value: 1 }));
  });
});

describe('wsrelay liveness', () => {
  it('pings at login, answers pings, and drops a peer that stops answering', async () => {
    const clock = new ManualClock();
    const app = await startApp({ wsrelayPort: 0 }, { clock });
    const p = port(app, 'wsrelay', 'ws');
    const server = await loginServer(p, 'LIVE');
    const live = await WsPeer.open(p);
    const firstPing = once(live.ws, 'ping');
    live.send({ action: 'login_client', server_code: 'LIVE', client_id: 'live' });
    await firstPing;
    expect(await server.next()).toBe(connect('live'));
    const dead = await WsPeer.open(p, '/', { autoPong: false });
    dead.send({ action: 'login_client', server_code: 'LIVE', client_id: 'dead' });
    expect(await server.next()).toBe(connect('dead'));

    const pong = once(live.ws, 'pong');
    live.ws.ping();
    await pong;

    for (let round = 0; round < 4; round++) {
      const pings = [once(live.ws, 'ping'), once(server.ws, 'ping')];
      clock.advance(1000);
      await Promise.all(pings);
      // The dead peer missed the login ping and the first tick's: the second tick drops it.
      if (round === 1) expect(await server.next()).toBe(disconnect('dead'));
      // A message after the ping proves the relay has read the pong that ws sent first.
      live.send({ round });
      server.send(`round ${round}`);
      expect(await server.nextJson()).toEqual({ round, client_id: 'live' });
      expect(await live.next()).toBe(`round ${round}`);
    }
    expect((await dead.closed).code).toBe(1006);
    expect(app.front('wsrelay')!.stats()).toMatchObject({ clients: 1, rooms: 1 });
  });

  it('stops cleanly with peers connected', async () => {
    const { app, port: p } = await relay();
    const server = await loginServer(p, 'STOP');
    const phone = await loginClient(p, server, 'STOP', '1');
    const idle = await WsPeer.open(p);
    await app.stop();
    await Promise.all([server.closed, phone.closed, idle.closed]);
    await expect.poll(() => app.front('wsrelay')!.stats()).toEqual({ connections: 0, rooms: 0, clients: 0, admitted: 0 });
  });

  it('stops with 1001 going away; a phone whose server went first gets 1000; nobody hears a disconnect', async () => {
    const { app, port: p } = await relay();
    // Connected before its server, logged in after: the shutdown reaches it first.
    const early = await WsPeer.open(p);
    const server = await loginServer(p, 'AWAY');
    early.send({ action: 'login_client', server_code: 'AWAY', client_id: 'early' });
    expect(await server.next()).toBe(connect('early'));
    const late = await loginClient(p, server, 'AWAY', 'late');
    const idle = await WsPeer.open(p);
    await app.stop();
    expect((await early.closed).code).toBe(1001);
    expect((await server.closed).code).toBe(1001);
    expect((await late.closed).code).toBe(1000);
    expect((await idle.closed).code).toBe(1001);
    expect(server.received).toEqual([connect('early'), connect('late')]);
    expect([...early.received, ...late.received, ...idle.received]).toEqual([]);
  });

  it('answers plain HTTP with 426', async () => {
    const { port: p } = await relay();
    const response = await fetch(`http://127.0.0.1:${p}/`);
    expect(response.status).toBe(426);
    await response.text();
  });

  it('exports metrics', async () => {
    const { app, port: p } = await relay();
    const server = await loginServer(p, 'M');
    const phone = await loginClient(p, server, 'M', '1');
    phone.send({});
    await server.next();
    const text = await app.metrics.metrics();
    expect(text).toContain('noray_wsrelay_connections 2');
    expect(text).toContain('noray_wsrelay_rooms 1');
    expect(text).toMatch(/noray_wsrelay_messages_relayed_total\{direction="to_server"\} 1/);
    expect(WebSocket.OPEN).toBe(1);
  });
});
