// GameServer and Phone against a running wsrelay front over loopback: logins, broadcast and
// targeted messages, phone messages with their client_id, and disconnects both ways.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { App } from '../../src/app.js';
import { GameServer, Phone } from '../../src/client/index.js';
import { port, startApp } from '../helpers/app.js';

const open: Array<GameServer | Phone> = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((peer) => peer.close()));
});

const url = (app: App) => `ws://127.0.0.1:${port(app, 'wsrelay', 'ws')}/`;

async function gameServer(app: App, code: string): Promise<GameServer> {
  const server = await GameServer.open({ url: url(app), WebSocket, code });
  open.push(server);
  return server;
}

/** Joins and waits until the game server has been told. */
async function phone(app: App, server: GameServer, clientId: string): Promise<Phone> {
  const told = server.once('connect', { accept: (notice) => notice.clientId === clientId });
  const joined = await Phone.join({ url: url(app), WebSocket, code: server.code, clientId });
  open.push(joined);
  await told;
  return joined;
}

describe('GameServer and Phone', () => {
  it('broadcast reaches every phone; sendTo only the one; phone messages arrive stamped', async () => {
    const app = await startApp({ wsrelayPort: 0 });
    const server = await gameServer(app, 'SNEK');
    const one = await phone(app, server, '1');
    const two = await phone(app, server, '2');

    const both = Promise.all([one.once('message'), two.once('message')]);
    server.broadcast({ state: 'lobby', players: 2 });
    expect((await both).map((message) => message.data)).toEqual([
      { state: 'lobby', players: 2 },
      { state: 'lobby', players: 2 },
    ]);

    let twoHeard = 0;
    two.on('message', () => twoHeard++);
    const targeted = one.once('message');
    server.sendTo('1', { welcome: true });
    expect((await targeted).data).toEqual({ welcome: true, receiver_id: '1' });

    const fromPhone = server.once('message');
    two.send({ steer: -0.5 });
    expect(await fromPhone).toEqual({ clientId: '2', data: { steer: -0.5, client_id: '2' }, text: '{"steer":-0.5,"client_id":"2"}' });
    // The targeted message went to phone 1 only: phone 2's next message is the next broadcast.
    const next = two.once('message');
    server.broadcast('tick');
    expect((await next).data).toBe('tick');
    expect(twoHeard).toBe(1);
  });

  it('big integers from phones arrive exactly in the text', async () => {
    const app = await startApp({ wsrelayPort: 0 });
    const server = await gameServer(app, 'BIGN');
    const player = await phone(app, server, '7');
    const received = server.once('message');
    player.sendRaw('{"score":123456789012345678901}');
    expect((await received).text).toContain('123456789012345678901');
  });

  it('the server hears phones leave; phones are closed when the server leaves', async () => {
    const app = await startApp({ wsrelayPort: 0 });
    const server = await gameServer(app, 'LEFT');
    const one = await phone(app, server, '1');
    const two = await phone(app, server, '2');
    const left = server.once('disconnect');
    await one.close();
    expect(await left).toEqual({ clientId: '1' });

    const closed = two.once('close');
    await server.close();
    await closed;
    expect(two.isClosed).toBe(true);
  });

  it('a taken room code rejects open(); an unknown one closes the phone', async () => {
    const app = await startApp({ wsrelayPort: 0 });
    await gameServer(app, 'TAKN');
    await expect(GameServer.open({ url: url(app), WebSocket, code: 'TAKN' })).rejects.toThrow(/TAKN is taken/);
    const stray = await Phone.join({ url: url(app), WebSocket, code: 'NONE', clientId: '1' });
    open.push(stray);
    await stray.once('close');
  });

  it('an incoming message over maxMessageChars closes the connection with 1009', async () => {
    const app = await startApp({ wsrelayPort: 0 });
    const server = await gameServer(app, 'HUGE');
    const small = await Phone.join({ url: url(app), WebSocket, code: 'HUGE', clientId: '1', maxMessageChars: 100 });
    open.push(small);
    await server.once('connect');
    const closed = small.once('close');
    server.broadcast('x'.repeat(200));
    expect((await closed).code).toBe(1009);
    expect(() => server.broadcast('y'.repeat(2 * 1024 * 1024))).toThrow(RangeError);
  });
});
