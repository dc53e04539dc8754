import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { URL_ALPHABET } from '../../src/config/options/noray.js';
import { ManualClock } from '../../src/core/clock.js';
import type { NorayFront } from '../../src/fronts/noray/index.js';
import { port, startApp } from '../helpers/app.js';
import { describeEachEngine, type RelayEngineKind } from '../helpers/relay-engines.js';
import { rejections } from '../helpers/metrics.js';
import { bindLocalPort, blastHostHandshake, handshakeOverPacketPeer, NetfoxClient } from '../clients/netfox.js';

const clients: NetfoxClient[] = [];
const sockets: UdpSocket[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const socket of sockets.splice(0)) {
    try {
      socket.close();
    } catch {
      // already closed
    }
  }
});

/** The relay engine the describe block being run tests (describeEachEngine); unset: the default. */
let engine: RelayEngineKind | undefined;

/** Runs a block of relay tests once per relay engine. */
function describeRelay(name: string, body: () => void): void {
  describeEachEngine(name, (kind) => {
    beforeEach(() => void (engine = kind));
    afterEach(() => void (engine = undefined));
    body();
  });
}

async function startNoray(overrides: Partial<Config> = {}, clock?: ManualClock): Promise<App> {
  return startApp(
    {
      ...(engine === undefined ? {} : { udpRelayEngine: engine }),
      socketPort: 0,
      udpRegistrarPort: 0,
      udpRelayPorts: Array.from({ length: 8 }, () => 0),
      udpRelayMaxIndividualTraffic: 64 * 1024 * 1024,
      ...overrides,
    },
    clock ? { clock } : {},
  );
}

async function player(app: App, localAddress = '127.0.0.1'): Promise<NetfoxClient> {
  const client = await NetfoxClient.connect(port(app, 'noray', 'control'), '127.0.0.1', localAddress);
  clients.push(client);
  return client;
}

/** register_host() then register_remote(), as every netfox player does. */
async function registeredPlayer(app: App, localAddress = '127.0.0.1'): Promise<NetfoxClient> {
  const client = await player(app, localAddress);
  await client.registerHost();
  expect(await client.registerRemote(port(app, 'noray', 'registrar'))).toBe('OK');
  return client;
}

/** A registered host and client introduced by `connect-relay`, with the relay port each was told. */
async function relayedPlayers(app: App) {
  const host = await registeredPlayer(app);
  const client = await registeredPlayer(app);
  client.putCommand('connect-relay', host.oid);
  const hostRelayPort = Number(await client.next('connect-relay'));
  const clientRelayPort = Number(await host.next('connect-relay'));
  return { host, client, hostRelayPort, clientRelayPort };
}

async function localSocket(client: NetfoxClient): Promise<UdpSocket> {
  const socket = await bindLocalPort(client.localPort, client.localAddress);
  sockets.push(socket);
  return socket;
}

type Received = { data: Buffer; port: number; address: string };

/** A PacketHandshake status datagram: `$`, then r or -, w, x or -. */
const HANDSHAKE_STATUS = /^\$[r-]w[x-]$/;

function collect(socket: UdpSocket, keep: (entry: Received) => boolean = () => true): Received[] {
  const received: Received[] = [];
  socket.on('message', (data, from) => {
    const entry = { data, port: from.port, address: from.address };
    if (keep(entry)) received.push(entry);
  });
  return received;
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Sends every payload in order with at most `window` unacknowledged, so loopback buffers never overflow. */
async function sendPaced(
  socket: UdpSocket,
  payloads: Buffer[],
  toPort: number,
  delivered: () => number,
  window = 64,
): Promise<void> {
  for (let i = 0; i < payloads.length; i++) {
    while (i - delivered() >= window) await new Promise((resolve) => setImmediate(resolve));
    socket.send(payloads[i] as Buffer, toPort, '127.0.0.1');
  }
}

function rawConnection(app: App) {
  const socket = connect({ port: port(app, 'noray', 'control'), host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  return {
    socket,
    text: () => Buffer.concat(chunks).toString('utf8'),
    closed: () => closed,
  };
}

describe('noray control channel', () => {
  it('register-host answers set-oid then set-pid, LF-terminated, with ids of the configured shape', async () => {
    const app = await startNoray();
    const raw = rawConnection(app);
    raw.socket.write('register-host\n');
    await until(() => raw.text().split('\n').length >= 3);
    const text = raw.text();
    expect(text).not.toContain('\r');
    const match = /^set-oid (\S+)\nset-pid (\S+)\n$/.exec(text);
    expect(match).not.toBeNull();
    const [, oid, pid] = match as RegExpExecArray;
    expect(oid).toHaveLength(21);
    expect(pid).toHaveLength(128);
    for (const char of `${oid}${pid}`) expect(URL_ALPHABET).toContain(char);
    raw.socket.destroy();
  });

  it('register-host ID lets the game pick its OpenID, refused when taken or invalid', async () => {
    const app = await startNoray();
    const a = await player(app);
    a.putCommand('register-host', 'lobby-42');
    expect(await a.next('set-oid')).toBe('lobby-42');
    expect(await a.next('set-pid')).toHaveLength(128);

    const b = await player(app);
    b.putCommand('register-host', 'lobby-42');
    expect(b.rawLines).toEqual([]);
    await b.next('error');
    b.putCommand('register-host', 'x'.repeat(65));
    await b.next('error');
    b.send('register-host \u0007bell\n');
    await b.next('error');
    // Invalid UTF-8 and NFKC lookalikes are refused too.
    b.send(Buffer.concat([Buffer.from('register-host ab'), Buffer.from([0xff]), Buffer.from('cd\n')]));
    await b.next('error');
    b.putCommand('register-host', '\uff4c\uff4f\uff42\uff42\uff59');
    await b.next('error');
    // The holder itself may register the same id again (the latest registration replaces the earlier one).
    a.putCommand('register-host', 'lobby-42');
    expect(await a.next('set-oid')).toBe('lobby-42');
    const lastPid = await a.next('set-pid');
    // Once the holder leaves, the id is reserved for it (NORAY_OID_RESERVATION): others wait...
    a.close();
    await until(() => app.front<NorayFront>('noray')?.stats().hosts === 0);
    b.putCommand('register-host', 'lobby-42');
    expect(await b.next('error')).toBe('OpenID');
    expect(b.rawLines).toEqual([]);
    // ...and the owner takes it back with its last PrivateID.
    const back = await player(app);
    back.putCommand('register-host', `lobby-42 ${lastPid}`);
    expect(await back.next('set-oid')).toBe('lobby-42');
  });

  it('a second register-host on a connection replaces the first session', async () => {
    const app = await startNoray();
    const client = await player(app);
    await client.registerHost();
    const firstOid = client.oid;
    const firstPid = client.pid;
    await client.registerHost();
    expect(client.oid).not.toBe(firstOid);
    const front = app.front<NorayFront>('noray');
    expect(front?.stats().hosts).toBe(1);
    expect(await front?.sessions.byPublicId(firstOid)).toBeUndefined();
    expect(await front?.sessions.bySecret(firstPid)).toBeUndefined();
    expect((await front?.sessions.byPublicId(client.oid))?.secret).toBe(client.pid);
  });

  it('echo answers its data, spaces included', async () => {
    const app = await startNoray();
    const raw = rawConnection(app);
    raw.socket.write('echo a b  c\n');
    await until(() => raw.text().endsWith('\n'));
    expect(raw.text()).toBe('echo a b  c\n');
    raw.socket.destroy();
  });

  it('accepts LF, CRLF and lone CR, split byte by byte or coalesced; skips empty lines', async () => {
    const app = await startNoray();
    const raw = rawConnection(app);
    const input = Buffer.from('\n\r\necho one\r\necho two\recho three\n\n\necho four\n');
    for (const byte of input) {
      raw.socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    raw.socket.write('echo five\necho six\r\necho seven\n');
    await until(() => raw.text().split('\n').length === 8);
    expect(raw.text()).toBe('echo one\necho two\necho three\necho four\necho five\necho six\necho seven\n');
    raw.socket.destroy();
  });

  it('answers unknown commands with an error line and keeps the connection', async () => {
    const app = await startNoray();
    const raw = rawConnection(app);
    raw.socket.write('fly-to-the-moon now\necho still here\n');
    await until(() => raw.text().split('\n').length >= 3);
    const [error, echo] = raw.text().split('\n');
    expect(error).toMatch(/^error .*fly-to-the-moon/);
    expect(echo).toBe('echo still here');
    expect(raw.closed()).toBe(false);
    raw.socket.destroy();
  });

  it('an over-long line gets an error line and the connection is closed', async () => {
    const app = await startNoray({ socketMaxLineLength: 256 });
    const raw = rawConnection(app);
    raw.socket.write('echo ok\n');
    raw.socket.write(`echo ${'x'.repeat(300)}`);
    await until(() => raw.closed(), 8000);
    const lines = raw.text().split('\n');
    expect(lines[0]).toBe('echo ok');
    expect(lines[1]).toMatch(/^error line too long/);
    // Other clients are unaffected.
    const other = await player(app);
    other.putCommand('echo', 'fine');
    expect(await other.next('echo')).toBe('fine');
  });

  it('refuses connect and connect-relay with clear errors when preconditions fail', async () => {
    const app = await startNoray();
    const client = await player(app);
    client.putCommand('connect', 'nobody');
    expect(await client.next('error')).toBe('register-host');
    await client.registerHost();
    client.putCommand('connect-relay', 'nobody');
    expect(await client.next('error')).toBe('register');
    expect(await client.registerRemote(port(app, 'noray', 'registrar'))).toBe('OK');
    client.putCommand('connect', 'nobody');
    expect(await client.next('error')).toBe('unknown');
    client.putCommand('connect');
    expect(await client.next('error')).toBe('missing');

    const host = await player(app);
    await host.registerHost();
    client.putCommand('connect', host.oid);
    expect(await client.next('error')).toBe('host');
    expect(host.rawLines).toEqual([]);
  });
});

describe('UDP registrar', () => {
  it('answers OK to a known pid, also on repeats; the latest registration wins', async () => {
    const app = await startNoray();
    const host = await registeredPlayer(app);
    const front = app.front<NorayFront>('noray');
    const session = await front?.sessions.byPublicId(host.oid);
    expect(session?.secret).toBe(host.pid);
    expect(await front?.addresses.endpointOf(session!.id)).toEqual({ address: '127.0.0.1', port: host.localPort });

    // register_remote again from a new socket: the new port replaces the old one.
    const firstPort = host.localPort;
    expect(await host.registerRemote(port(app, 'noray', 'registrar'))).toBe('OK');
    expect(host.localPort).not.toBe(firstPort);
    expect((await front?.addresses.endpointOf(session!.id))?.port).toBe(host.localPort);

    const client = await registeredPlayer(app);
    client.putCommand('connect', host.oid);
    expect(await client.next('connect')).toBe(`127.0.0.1:${host.localPort}`);
  });

  it('answers an unknown PrivateID with fewer bytes than it sent, never OK, and garbage not at all', async () => {
    const app = await startNoray();
    const udp = createSocket('udp4');
    sockets.push(udp);
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const replies: Buffer[] = [];
    udp.on('message', (message) => replies.push(message));
    const registrar = port(app, 'noray', 'registrar');
    // Datagrams that cannot be a PrivateID (wrong length or characters) get no reply at all:
    // answering garbage is how two UDP services are made to ping-pong forever.
    const garbage = ['x', 'ab', 'not-a-pid', 'Unknown host pid!', 'OK', 'y'.repeat(127), `${'y'.repeat(127)} `, 'z'.repeat(2000)];
    for (const text of garbage) udp.send(Buffer.from(text), registrar, '127.0.0.1');
    // A datagram shaped like a PrivateID but unknown is answered, and it is answered after the
    // garbage was read: if any of it had been answered, its reply would arrive first.
    const unknown = Buffer.from('y'.repeat(128));
    udp.send(unknown, registrar, '127.0.0.1');
    await until(() => replies.length >= 1);
    expect(replies).toHaveLength(1);
    const reply = replies[0] as Buffer;
    expect(reply.toString()).toBe('Unknown host pid!');
    expect(reply.length).toBeLessThanOrEqual(unknown.length);
    // A netfox client treats any non-OK reply as failure.
    const client = await player(app);
    await client.registerHost();
    client.pid = 'y'.repeat(128);
    expect(await client.registerRemote(registrar)).toBe('FAILED');
  });

  it('rate-limits replies to one source', async () => {
    const app = await startNoray({ udpRegistrarReplyRate: 50, udpRegistrarReplyBurst: 100 });
    const registrar = port(app, 'noray', 'registrar');
    const udp = createSocket('udp4');
    sockets.push(udp);
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    let replies = 0;
    udp.on('message', () => replies++);
    for (let i = 0; i < 300; i++) udp.send(Buffer.from('y'.repeat(128)), registrar, '127.0.0.1');
    await expect.poll(() => rejections(app.metrics, 'noray', 'registrar_reply_rate')).toBeGreaterThan(0);
    expect(replies).toBeLessThanOrEqual(150);
  });
});

describe('logging', () => {
  it('never prints a PrivateID in full, even at trace level', async () => {
    let output = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output += chunk.toString();
        done();
      },
    });
    const app = await startApp(
      { logLevel: 'trace', socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0, 0] },
      { logger: pino({ level: 'trace' }, sink) },
    );
    const host = await registeredPlayer(app);
    const client = await registeredPlayer(app);
    client.putCommand('connect-relay', host.oid);
    await client.next('connect-relay');
    client.close();
    await until(() => output.includes('host registered'));
    expect(output).toContain(host.oid);
    expect(output).not.toContain(host.pid);
    expect(output).not.toContain(client.pid);
    expect(output).not.toContain(host.pid.slice(0, 12));
  });
});

describe('NAT punchthrough (connect)', () => {
  it('hands each side the other\'s external address, then they handshake directly', async () => {
    const app = await startNoray();
    const host = await registeredPlayer(app);
    const client = await registeredPlayer(app);
    client.putCommand('connect', host.oid);
    expect(await client.next('connect')).toBe(`127.0.0.1:${host.localPort}`);
    expect(await host.next('connect')).toBe(`127.0.0.1:${client.localPort}`);

    const hostUdp = await localSocket(host);
    const clientUdp = await localSocket(client);
    const blast = blastHostHandshake(hostUdp, '127.0.0.1', client.localPort);
    try {
      const result = await handshakeOverPacketPeer(clientUdp, '127.0.0.1', host.localPort);
      expect(result.ok).toBe(true);
      expect(result.from.every((info) => info.port === host.localPort)).toBe(true);
    } finally {
      blast.stop();
    }
  });
});

describeRelay('UDP relay (connect-relay)', () => {
  it('relays the handshake and 1000 datagrams each way intact, in order, from the relay address', async () => {
    const app = await startNoray();
    const { host, client, hostRelayPort, clientRelayPort } = await relayedPlayers(app);
    const relayPorts = app.ports().noray?.relay as number[];
    expect(relayPorts).toContain(hostRelayPort);
    expect(relayPorts).toContain(clientRelayPort);
    expect(hostRelayPort).not.toBe(clientRelayPort);

    const hostUdp = await localSocket(host);
    const clientUdp = await localSocket(client);
    // Godot: the host blasts `$rwx` at the client's relay port, the client does the full handshake.
    const blast = blastHostHandshake(hostUdp, '127.0.0.1', clientRelayPort);
    try {
      const result = await handshakeOverPacketPeer(clientUdp, '127.0.0.1', hostRelayPort);
      expect(result.ok).toBe(true);
      expect(result.from.every((info) => info.port === hostRelayPort && info.address === '127.0.0.1')).toBe(true);
    } finally {
      blast.stop();
    }
    hostUdp.removeAllListeners('message');
    clientUdp.removeAllListeners('message');

    const payloads = Array.from({ length: 1000 }, (_, i) => {
      const size = 1 + (i * 7919) % 1200;
      const payload = Buffer.alloc(size, i % 251);
      payload.writeUInt8(i % 256, 0);
      return payload;
    });
    // Handshake statuses still in flight are not game data.
    const game = (entry: { data: Buffer }) => !HANDSHAKE_STATUS.test(entry.data.toString('latin1'));
    const atHost = collect(hostUdp, game);
    const atClient = collect(clientUdp, game);
    await Promise.all([
      sendPaced(clientUdp, payloads, hostRelayPort, () => atHost.length),
      sendPaced(hostUdp, payloads, clientRelayPort, () => atClient.length),
    ]);
    await until(() => atHost.length === 1000 && atClient.length === 1000, 10_000);
    for (let i = 0; i < 1000; i++) {
      expect(atHost[i]?.data.equals(payloads[i] as Buffer)).toBe(true);
      expect(atHost[i]?.port).toBe(clientRelayPort);
      expect(atClient[i]?.data.equals(payloads[i] as Buffer)).toBe(true);
      expect(atClient[i]?.port).toBe(hostRelayPort);
    }
    const stats = app.front<NorayFront>('noray')?.relay?.stats;
    expect(stats?.drops.no_permission).toBe(0);
    expect(stats?.packets).toBeGreaterThanOrEqual(2000);
  });

  it('gives a host one relay port and each of three clients (on three IPs) its own', async () => {
    const app = await startNoray();
    const host = await registeredPlayer(app);
    const hostUdp = await localSocket(host);
    const players = [];
    for (let i = 0; i < 3; i++) {
      const client = await registeredPlayer(app, `127.0.0.${11 + i}`);
      client.putCommand('connect-relay', host.oid);
      const hostRelayPort = Number(await client.next('connect-relay'));
      const clientRelayPort = Number(await host.next('connect-relay'));
      players.push({ client, udp: await localSocket(client), hostRelayPort, clientRelayPort });
    }
    expect(new Set(players.map((p) => p.hostRelayPort)).size).toBe(1);
    expect(new Set(players.map((p) => p.clientRelayPort)).size).toBe(3);

    const atHost = collect(hostUdp);
    const atClients = players.map((p) => collect(p.udp));
    players.forEach((p, i) => p.udp.send(`from client ${i}`, p.hostRelayPort, '127.0.0.1'));
    players.forEach((p, i) => hostUdp.send(`to client ${i}`, p.clientRelayPort, '127.0.0.1'));
    await until(() => atHost.length === 3 && atClients.every((list) => list.length === 1));
    for (const [i, p] of players.entries()) {
      expect(atClients[i]?.[0]?.data.toString()).toBe(`to client ${i}`);
      expect(atClients[i]?.[0]?.port).toBe(p.hostRelayPort);
      const fromThisClient = atHost.find((entry) => entry.data.toString() === `from client ${i}`);
      expect(fromThisClient?.port).toBe(p.clientRelayPort);
    }
  });

  it('forwards only between introduced endpoints', async () => {
    const app = await startNoray();
    const { host, client, hostRelayPort, clientRelayPort } = await relayedPlayers(app);
    const hostUdp = await localSocket(host);
    const clientUdp = await localSocket(client);
    const atHost = collect(hostUdp);
    const stats = () => app.front<NorayFront>('noray')?.relay?.stats;

    // Another IP never gets in.
    const stranger = createSocket('udp4');
    sockets.push(stranger);
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.2', resolve));
    stranger.send('let me in', hostRelayPort, '127.0.0.1');
    await until(() => (stats()?.drops.no_permission ?? 0) === 1);
    // A relay port nobody holds drops too.
    const unused = (app.ports().noray?.relay as number[]).filter((p) => p !== hostRelayPort && p !== clientRelayPort);
    stranger.send('hello?', unused[0] as number, '127.0.0.1');
    await until(() => (stats()?.drops.unallocated ?? 0) === 1);

    // Another port of the client's IP, while the client is active on the lane, is locked out.
    clientUdp.send('the client', hostRelayPort, '127.0.0.1');
    await until(() => atHost.length === 1);
    const neighbour = createSocket('udp4');
    sockets.push(neighbour);
    await new Promise<void>((resolve) => neighbour.bind(0, '127.0.0.1', resolve));
    neighbour.send('same ip, other port', hostRelayPort, '127.0.0.1');
    await until(() => (stats()?.drops.mapping_locked ?? 0) === 1);
    expect(atHost.map((entry) => entry.data.toString())).toEqual(['the client']);
    expect(stats()?.learned).toBe(0);
  });

  it('keeps relays when the host disconnects, but the OpenID is gone', async () => {
    const app = await startNoray();
    const { host, client, hostRelayPort } = await relayedPlayers(app);
    const hostUdp = await localSocket(host);
    const clientUdp = await localSocket(client);
    const atHost = collect(hostUdp);
    host.close();
    await until(() => app.front<NorayFront>('noray')?.stats().hosts === 1);

    client.putCommand('connect', host.oid);
    expect(await client.next('error')).toBe('unknown');
    clientUdp.send('still playing', hostRelayPort, '127.0.0.1');
    await until(() => atHost.length === 1);
    expect(atHost[0]?.data.toString()).toBe('still playing');
  });

  it('relays a player whose relay traffic leaves from another port than the registrar saw (symmetric NAT)', async () => {
    const app = await startNoray();
    const { host, client, hostRelayPort, clientRelayPort } = await relayedPlayers(app);
    // Behind a symmetric NAT each destination gets its own external port: both players here talk to
    // the relay from sockets the registrar never saw, and are answered only there.
    const hostNat = createSocket('udp4');
    const clientNat = createSocket('udp4');
    sockets.push(hostNat, clientNat);
    await Promise.all([hostNat, clientNat].map((s) => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))));
    const hostRegistered = collect(await localSocket(host));
    const clientRegistered = collect(await localSocket(client));
    const blast = blastHostHandshake(hostNat, '127.0.0.1', clientRelayPort);
    try {
      const handshake = await handshakeOverPacketPeer(clientNat, '127.0.0.1', hostRelayPort);
      expect(handshake.ok).toBe(true);
      expect(handshake.from.every((info) => info.port === hostRelayPort)).toBe(true);
    } finally {
      blast.stop();
    }
    // Until a player is heard on its lane it is sent to where the registrar saw it (a real
    // symmetric NAT drops that); from then on only to where it is heard.
    expect(hostRegistered.length + clientRegistered.length).toBeLessThanOrEqual(2);
    const before = [hostRegistered.length, clientRegistered.length];
    const atHost = collect(hostNat);
    const atClient = collect(clientNat);
    clientNat.send('game data', hostRelayPort, '127.0.0.1');
    hostNat.send('host data', clientRelayPort, '127.0.0.1');
    await until(() => atHost.some((entry) => entry.data.toString() === 'game data'));
    await until(() => atClient.some((entry) => entry.data.toString() === 'host data'));
    expect(atHost.find((entry) => entry.data.toString() === 'game data')?.port).toBe(clientRelayPort);
    expect(atClient.find((entry) => entry.data.toString() === 'host data')?.port).toBe(hostRelayPort);
    expect([hostRegistered.length, clientRegistered.length]).toEqual(before);
    expect(app.front<NorayFront>('noray')?.relay?.stats.learned).toBe(2);
  });

  it('moves a player\'s relays to its new address when it registers again (register_remote from a new port)', async () => {
    const app = await startNoray();
    const { host, client, hostRelayPort, clientRelayPort } = await relayedPlayers(app);
    const hostUdp = await localSocket(host);
    const oldClientPort = client.localPort;
    expect(await client.registerRemote(port(app, 'noray', 'registrar'))).toBe('OK');
    expect(client.localPort).not.toBe(oldClientPort);
    const clientUdp = await localSocket(client);
    const atClient = collect(clientUdp);
    const atHost = collect(hostUdp);
    hostUdp.send('to the new port', clientRelayPort, '127.0.0.1');
    await until(() => atClient.length === 1);
    expect(atClient[0]?.port).toBe(hostRelayPort);
    clientUdp.send('from the new port', hostRelayPort, '127.0.0.1');
    await until(() => atHost.length === 1);
    expect(atHost[0]?.port).toBe(clientRelayPort);
    client.putCommand('connect-relay', host.oid);
    expect(Number(await client.next('connect-relay'))).toBe(hostRelayPort);
    expect(Number(await host.next('connect-relay'))).toBe(clientRelayPort);
    expect(app.front<NorayFront>('noray')?.relay?.stats.relays).toBe(2);
  });

  it('reports a full relay pool with an error line', async () => {
    const app = await startNoray({ udpRelayPorts: [0, 0] });
    const host = await registeredPlayer(app);
    const a = await registeredPlayer(app);
    a.putCommand('connect-relay', host.oid);
    await a.next('connect-relay');
    const b = await registeredPlayer(app);
    b.putCommand('connect-relay', host.oid);
    expect(await b.next('error')).toBe('no');
  });
});

describeRelay('dual-stack listening', () => {
  it('sends IPv4 peers as plain dotted addresses and relays them over IPv6 sockets', async () => {
    const app = await startNoray({ socketHost: '::', udpHost: '::' });
    const host = await registeredPlayer(app);
    const client = await registeredPlayer(app);
    client.putCommand('connect', host.oid);
    expect(await client.next('connect')).toBe(`127.0.0.1:${host.localPort}`);
    expect(await host.next('connect')).toBe(`127.0.0.1:${client.localPort}`);

    client.putCommand('connect-relay', host.oid);
    const hostRelayPort = Number(await client.next('connect-relay'));
    const clientRelayPort = Number(await host.next('connect-relay'));
    const hostUdp = await localSocket(host);
    const clientUdp = await localSocket(client);
    const atHost = collect(hostUdp);
    const atClient = collect(clientUdp);
    clientUdp.send('over v6', hostRelayPort, '127.0.0.1');
    hostUdp.send('and back', clientRelayPort, '127.0.0.1');
    await until(() => atHost.length === 1 && atClient.length === 1);
    expect(atHost[0]).toMatchObject({ port: clientRelayPort, address: '127.0.0.1' });
    expect(atHost[0]?.data.toString()).toBe('over v6');
    expect(atClient[0]).toMatchObject({ port: hostRelayPort, address: '127.0.0.1' });
  });
});

describeRelay('relay expiry and limits (manual clock)', () => {
  async function relayedPair(overrides: Partial<Config>) {
    const clock = new ManualClock();
    const app = await startNoray({ udpRelayCleanupInterval: 1000, udpRelayTimeout: 30_000, ...overrides }, clock);
    const { host, client, hostRelayPort } = await relayedPlayers(app);
    const hostUdp = await localSocket(host);
    const clientUdp = await localSocket(client);
    const atHost = collect(hostUdp);
    const relay = app.front<NorayFront>('noray')?.relay;
    if (!relay) throw new Error('relay missing');
    const seen = () => relay.stats.packets + Object.values(relay.stats.drops).reduce((a, b) => a + b, 0);
    /** Sends one datagram and waits until the relay has forwarded or dropped it. */
    const send = async (size: number) => {
      const before = seen();
      clientUdp.send(Buffer.alloc(size, 1), hostRelayPort, '127.0.0.1');
      await until(() => seen() === before + 1);
    };
    return { clock, app, relay, atHost, send };
  }

  it('frees a relay after the idle timeout, checked at the cleanup interval', async () => {
    const { clock, relay, send } = await relayedPair({});
    await send(10);
    expect(relay.stats.relays).toBe(2);
    clock.advance(29_000);
    expect(relay.stats.relays).toBe(2);
    clock.advance(2_000);
    expect(relay.stats.relays).toBe(0);
    expect(relay.stats.expired).toBe(2);
    await send(10);
    expect(relay.stats.drops.unallocated).toBe(1);
  });

  it('drops over the per-relay bandwidth for the rest of the time slice', async () => {
    // 1000 B/s over 100 ms slices: 100 bytes per slice.
    const { clock, relay, send } = await relayedPair({
      udpRelayMaxIndividualTraffic: 1000,
      udpRelayTrafficInterval: 100,
    });
    await send(60);
    await send(60);
    expect(relay.stats.packets).toBe(1);
    expect(relay.stats.drops.relay_bandwidth).toBe(1);
    clock.advance(100);
    await send(60);
    expect(relay.stats.packets).toBe(2);
  });

  it('drops over the global bandwidth', async () => {
    const { relay, send } = await relayedPair({
      udpRelayMaxGlobalTraffic: 1000,
      udpRelayTrafficInterval: 100,
    });
    await send(90);
    await send(20);
    expect(relay.stats.drops.global_bandwidth).toBe(1);
    expect(relay.stats.packets).toBe(1);
  });

  it('stops forwarding after the lifetime duration', async () => {
    const { clock, relay, send } = await relayedPair({ udpRelayMaxLifetimeDuration: 10_000, udpRelayTimeout: 60_000 });
    await send(10);
    clock.advance(10_000);
    await send(10);
    expect(relay.stats.packets).toBe(1);
    expect(relay.stats.drops.lifetime_duration).toBe(1);
  });

  it('stops forwarding after the lifetime traffic', async () => {
    const { relay, send } = await relayedPair({ udpRelayMaxLifetimeTraffic: 250 });
    await send(100);
    await send(100);
    await send(100);
    expect(relay.stats.packets).toBe(2);
    expect(relay.stats.drops.lifetime_traffic).toBe(1);
  });
});
