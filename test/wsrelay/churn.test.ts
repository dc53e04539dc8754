import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { port, startApp } from '../helpers/app.js';
import { loginClient, loginServer, WsPeer } from '../clients/carparty.js';

const HANDSHAKE =
  'GET /churn HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A raw TCP peer: completes the handshake, then vanishes in the middle of a frame. */
async function vanishMidFrame(p: number): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: p });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(HANDSHAKE);
  await once(socket, 'data');
  // FIN+text, masked, 256-byte payload announced; only a few bytes follow.
  socket.write(Buffer.from([0x81, 0xfe, 0x01, 0x00, 1, 2, 3, 4, 0x7a, 0x7b, 0x7c]));
  socket.destroy();
}

/** A raw TCP peer that is not speaking HTTP at all. */
async function garbage(p: number): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: p });
  socket.on('error', () => {});
  socket.resume();
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]));
  await closed;
}

/** Misbehaving phones of one room; returns how many reached the room (each owes its server a connect and a disconnect). */
async function misbehave(p: number, code: string, kind: number, max: number): Promise<number> {
  if (kind === 4) return vanishMidFrame(p).then(() => 0);
  if (kind === 5) return garbage(p).then(() => 0);
  const peer = await WsPeer.open(p);
  if (kind === 0) {
    peer.send('{"action":"login_client",');
    await peer.closed;
    return 0;
  }
  const login = JSON.stringify({ action: 'login_client', server_code: code, client_id: `bad${kind}` });
  if (kind === 3) {
    // Abrupt disconnect once the login is on the wire.
    peer.ws.send(login, () => peer.ws.terminate());
  } else {
    peer.send(login);
    peer.send(kind === 1 ? '{not json' : `"${'o'.repeat(max)}"`);
  }
  await peer.closed;
  return 1;
}

async function goodRoom(p: number, code: string, phones: number): Promise<void> {
  const server = await loginServer(p, code);
  const clients: WsPeer[] = [];
  for (let i = 0; i < phones; i++) clients.push(await loginClient(p, server, code, String(i)));
  for (const [i, client] of clients.entries()) client.send({ i });
  // Order is kept per sender only, so compare as a set.
  const got = (await server.take(phones)).map((text) => JSON.parse(text) as { i: number; client_id: string });
  got.sort((a, b) => a.i - b.i);
  expect(got).toEqual(clients.map((_, i) => ({ i, client_id: String(i) })));
  server.send('{"receiver_id":"0","only":"zero"}');
  server.send('bye');
  expect(await clients[0]!.take(2)).toEqual(['{"receiver_id":"0","only":"zero"}', 'bye']);
  for (const client of clients.slice(1)) expect(await client.next()).toBe('bye');
  await clients[0]!.close();
  expect(await server.next()).toBe('{"action":"disconnect","client_id":"0"}');
  // The server leaving closes the remaining phones.
  await server.close();
  await Promise.all(clients.map((client) => client.closed));
}

describe('wsrelay churn', () => {
  it('leaves no connection, room or client behind after thousands of good and bad peers', async () => {
    const max = 4 * 1024;
    const app = await startApp({ wsrelayPort: 0, wsrelayMaxMessageSize: max });
    const p = port(app, 'wsrelay', 'ws');
    const batches = 50;
    let connections = 0;
    for (let batch = 0; batch < batches; batch++) {
      const sink = await loginServer(p, `sink${batch}`);
      const bad = Array.from({ length: 24 }, (_, i) => misbehave(p, `sink${batch}`, i % 6, max));
      const good = Array.from({ length: 4 }, (_, r) => goodRoom(p, `room${batch}-${r}`, 5));
      const [joined] = await Promise.all([Promise.all(bad).then((n) => n.reduce((a, b) => a + b, 0)), ...good]);
      // Every phone that got in is announced and then reported gone.
      const notices = (await sink.take(2 * joined)).map((text) => JSON.parse(text) as { action: string });
      expect(notices.filter((n) => n.action === 'connect')).toHaveLength(joined);
      expect(notices.filter((n) => n.action === 'disconnect')).toHaveLength(joined);
      sink.ws.terminate();
      connections += 1 + 24 + 4 * 6;
    }
    expect(connections).toBeGreaterThan(2000);
    const front = app.front('wsrelay')!;
    await expect.poll(() => front.stats(), { timeout: 10_000 }).toEqual({ connections: 0, rooms: 0, clients: 0, admitted: 0 });
  });
});
