// NorayClient against a running noray front over loopback: registration (server-made and chosen
// OpenIDs), register_remote with netfox's timing, connect and connect-relay, and the
// PacketHandshake helpers between two SDK clients, directly and through the relay.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { handshake, hostHandshake, NorayClient, RegisterRemoteError } from '../../src/client/node.js';
import { port, startApp } from '../helpers/app.js';

const clients: NorayClient[] = [];
const sockets: UdpSocket[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  for (const socket of sockets.splice(0)) socket.close();
});

function startNoray(): Promise<App> {
  return startApp({ socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: Array.from({ length: 4 }, () => 0) });
}

async function client(app: App, registrarPort = port(app, 'noray', 'registrar')): Promise<NorayClient> {
  const noray = await NorayClient.connect({ host: '127.0.0.1', port: port(app, 'noray', 'control'), registrarPort });
  clients.push(noray);
  return noray;
}

async function udp(localPort = 0): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(localPort, '127.0.0.1', resolve));
  sockets.push(socket);
  return socket;
}

/** A registered player with its game socket bound to the registered port, as netfox binds it. */
async function player(app: App): Promise<{ noray: NorayClient; game: UdpSocket }> {
  const noray = await client(app);
  await noray.register();
  const { localPort } = await noray.registerRemote({ bindAddress: '127.0.0.1' });
  return { noray, game: await udp(localPort) };
}

describe('NorayClient', () => {
  it('registers under an OpenID the server makes, and under one it chooses', async () => {
    const app = await startNoray();
    const made = await client(app);
    const { oid, pid } = await made.register();
    expect(oid).toMatch(/^[\w-]{21}$/);
    expect(pid).toHaveLength(128);
    expect(made.oid).toBe(oid);

    const chosen = await client(app);
    expect((await chosen.register('friday-night')).oid).toBe('friday-night');
    // Taken: the server's error line rejects the registration (and is an `error` event).
    const third = await client(app);
    const event = third.once('error');
    await expect(third.register('friday-night')).rejects.toThrow(/noray: /);
    expect((await event).reason).not.toBe('');
  });

  it('registerRemote registers the UDP port and reports it', async () => {
    const app = await startNoray();
    const noray = await client(app);
    await noray.register();
    const { localPort } = await noray.registerRemote({ bindAddress: '127.0.0.1' });
    expect(noray.localPort).toBe(localPort);
    expect(app.front('noray')?.stats()).toMatchObject({ registeredAddresses: 1 });
  });

  it('registerRemote sends the pid again every interval until the registrar answers', async () => {
    const app = await startNoray();
    // A lossy path to the real registrar: the first three datagrams are lost.
    const lossy = await udp();
    const upstream = await udp();
    let seen = 0;
    let player = { port: 0, address: '' };
    lossy.on('message', (message, from) => {
      seen++;
      player = from;
      if (seen > 3) upstream.send(message, port(app, 'noray', 'registrar'), '127.0.0.1');
    });
    upstream.on('message', (reply) => lossy.send(reply, player.port, player.address));

    const noray = await client(app, lossy.address().port);
    await noray.register();
    const { localPort } = await noray.registerRemote({ bindAddress: '127.0.0.1' });
    expect(localPort).toBe(player.port);
    expect(seen).toBeGreaterThanOrEqual(4);
  });

  it('registerRemote gives up after the timeout when nothing answers, and fails on any reply but OK', async () => {
    const app = await startNoray();
    const silent = await udp();
    let seen = 0;
    silent.on('message', () => seen++);
    const unanswered = await client(app, silent.address().port);
    await unanswered.register();
    const timedOut = await unanswered.registerRemote({ timeoutMs: 500, intervalMs: 100 }).catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(RegisterRemoteError);
    expect((timedOut as RegisterRemoteError).outcome).toBe('timeout');
    expect(seen).toBeGreaterThanOrEqual(2);

    // A datagram from anyone but the registrar (a peer on a shared game socket) is not its reply.
    const shared = await udp();
    const stranger = await udp();
    const sharing = await client(app);
    await sharing.register();
    const registering = sharing.registerRemote({ socket: shared, intervalMs: 100 });
    stranger.send('$-w-', shared.address().port, '127.0.0.1');
    await expect(registering).resolves.toEqual({ localPort: shared.address().port });

    // A pid the server no longer knows (its connection closed) is refused with the reason.
    const gone = await client(app);
    await gone.register();
    await gone.close();
    const refused = await gone.registerRemote().catch((error: unknown) => error);
    expect(refused).toMatchObject({ outcome: 'failed', reply: 'Unknown host pid!' });
  });

  it('connectNat: both sides learn the other address, and PacketHandshake succeeds between them', async () => {
    const app = await startNoray();
    const host = await player(app);
    const guest = await player(app);
    const hostHears = host.noray.once('connect');
    const hostAddress = await guest.noray.connectNat(host.noray.oid);
    const guestAddress = await hostHears;
    expect(hostAddress).toEqual({ address: '127.0.0.1', port: host.game.address().port });
    expect(guestAddress).toEqual({ address: '127.0.0.1', port: guest.game.address().port });

    const [hostOk, guestOk] = await Promise.all([
      handshake(host.game, guestAddress.address, guestAddress.port),
      handshake(guest.game, hostAddress.address, hostAddress.port),
    ]);
    expect([hostOk, guestOk]).toEqual([true, true]);
  });

  it('connectRelay: each side is given a relay port, and datagrams and the handshake go through the relay', async () => {
    const app = await startNoray();
    const host = await player(app);
    const guest = await player(app);
    const hostHears = host.noray.once('connect-relay');
    const toHost = await guest.noray.connectRelay(host.noray.oid);
    const toGuest = await hostHears;
    const relayPorts = app.ports().noray?.relay as number[];
    expect(relayPorts).toContain(toHost.port);
    expect(relayPorts).toContain(toGuest.port);
    expect(toHost.address).toBe('127.0.0.1');

    // A Godot host blasts $rwx over ENet; the guest's over_packet_peer sees it through the relay.
    const arrived = new Promise<{ text: string; port: number }>((resolve) =>
      host.game.once('message', (message, from) => resolve({ text: message.toString(), port: from.port })),
    );
    const [guestOk] = await Promise.all([
      handshake(guest.game, toHost.address, toHost.port),
      hostHandshake(host.game, toGuest.address, toGuest.port, { timeoutMs: 1000 }),
    ]);
    expect(guestOk).toBe(true);
    // The host sees the guest as the relay port it was told, never the guest's own address.
    expect(await arrived).toEqual({ text: expect.stringMatching(/^\$[r-]w[x-]$/) as string, port: toGuest.port });
  });

  it('connectNat to an unknown OpenID rejects with the server reason', async () => {
    const app = await startNoray();
    const { noray } = await player(app);
    await expect(noray.connectNat('nobody-here')).rejects.toThrow(/noray: /);
    expect(await noray.echo('still here')).toBe('still here');
  });

  it('closes the connection on a line over its limit and says why', async () => {
    const server = createServer((socket: Socket) => socket.write(`set-oid ${'a'.repeat(100)}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const noray = await NorayClient.connect({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0, maxLineLength: 64 });
      const closed = await noray.once('close');
      expect(closed.error?.message).toMatch(/over 64 bytes/);
      expect(noray.oid).toBe('');
    } finally {
      server.close();
    }
  });

  it('a command the server never answers rejects after timeoutMs', async () => {
    const server = createServer((socket) => socket.resume()); // reads (and so sees the FIN) but never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const noray = await NorayClient.connect({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0, timeoutMs: 200 });
      clients.push(noray);
      await expect(noray.register()).rejects.toThrow(/no reply from noray within 200 ms/);
    } finally {
      server.close();
    }
  });

  it('handshake gives up with false after its timeout, and takes only status datagrams for the peer', async () => {
    const me = await udp();
    const peer = await udp();
    // The peer answers with game traffic, never a status ('$' and at most 16 bytes): that is no handshake.
    peer.on('message', (_message, from) => {
      peer.send('rwx game data', from.port, from.address);
      peer.send(`$rwx${'.'.repeat(13)}`, from.port, from.address);
    });
    const started = Date.now();
    expect(await handshake(me, '127.0.0.1', peer.address().port, { timeoutMs: 300, intervalMs: 50 })).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });
});
