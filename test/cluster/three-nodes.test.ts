// Three nodes of one cluster, each the real bin in its own process on its own loopback address
// (127.0.0.11-13, the same ports on each, like three machines), sharing one real Redis. The
// original clients are used unchanged, each talking to whichever node it picked.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WsPeer } from '../clients/carparty.js';
import { bindLocalPort, NetfoxClient } from '../clients/netfox.js';
import { eventually, OrionClient } from '../clients/orion.js';
import { RoccoClient } from '../clients/rocco.js';
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js';
import { relayEngineKinds } from '../helpers/relay-engines.js';
import { cleanEnv, Run } from '../helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');
const HOSTS = ['127.0.0.11', '127.0.0.12', '127.0.0.13'] as const;
const missing = process.platform !== 'linux' ? 'needs Linux (all of 127/8 on loopback)' : redisMissing();
const onCi = process.env.CI === 'true';

interface Ports {
  control: number;
  registrar: number;
  ws: number;
  tcp: number;
  lobby: number;
  lobbyUdp: number;
  /** First of RELAY_PORTS relay ports. */
  relay: number;
}

const RELAY_PORTS = 16;

/** Whether a TCP and a UDP port are free on every node address. */
async function freeEverywhere(port: number): Promise<boolean> {
  for (const host of HOSTS) {
    const tcp = await new Promise<boolean>((done) => {
      const server = createServer();
      server.once('error', () => done(false));
      server.listen(port, host, () => server.close(() => done(true)));
    });
    const udp = await new Promise<boolean>((done) => {
      const socket = createSocket('udp4');
      socket.once('error', () => {
        socket.close();
        done(false);
      });
      socket.bind(port, host, () => socket.close(() => done(true)));
    });
    if (!tcp || !udp) return false;
  }
  return true;
}

async function pickPorts(): Promise<Ports> {
  const picked: number[] = [];
  while (picked.length < 6) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (!picked.includes(port) && (await freeEverywhere(port))) picked.push(port);
  }
  const [control = 0, registrar = 0, ws = 0, tcp = 0, lobby = 0, lobbyUdp = 0] = picked;
  for (;;) {
    const relay = 20_000 + Math.floor(Math.random() * 30_000);
    const range = Array.from({ length: RELAY_PORTS }, (_, i) => relay + i);
    if (range.some((port) => picked.includes(port))) continue;
    let free = true;
    for (const port of range) if (!(await freeEverywhere(port))) free = false;
    if (free) return { control, registrar, ws, tcp, lobby, lobbyUdp, relay };
  }
}

describe.skipIf(missing !== null && !onCi)('a cluster of three processes', () => {
  let redis: RedisServer;
  let ports: Ports;
  const nodes = new Map<string, Run>();
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    if (missing !== null) throw new Error(`${missing}: required on CI`);
    redis = await startRedis();
    ports = await pickPorts();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await Promise.resolve(cleanup()).catch(() => undefined);
    for (const run of nodes.values()) if (run.running) run.child.kill('SIGKILL');
    await Promise.all([...nodes.values()].map((run) => run.exited.catch(() => undefined)));
    nodes.clear();
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    await client.flushAll();
    await client.close();
  });
  afterAll(async () => redis?.stop());

  async function startNode(index: number, extraEnv: Record<string, string> = {}): Promise<Run> {
    const host = HOSTS[index] as string;
    const run = new Run(process.execPath, [BIN], {
      cwd: ROOT,
      env: cleanEnv({
        NORAY_REDIS_URL: redis.url,
        NORAY_NODE_ID: `n${index + 1}`,
        NORAY_NODE_HEARTBEAT: '250ms',
        NORAY_NODE_TIMEOUT: '1s',
        NORAY_SOCKET_HOST: host,
        NORAY_UDP_HOST: host,
        NORAY_WSRELAY_HOST: host,
        NORAY_TCPRELAY_HOST: host,
        NORAY_LOBBY_HOST: host,
        NORAY_HTTP_HOST: host,
        NORAY_HTTP_PORT: 'off',
        NORAY_SOCKET_PORT: String(ports.control),
        NORAY_UDP_REGISTRAR_PORT: String(ports.registrar),
        NORAY_UDP_RELAY_PORTS: `${ports.relay}-${ports.relay + RELAY_PORTS - 1}`,
        NORAY_UDP_RELAY_MIN_PORTS: '1',
        NORAY_WSRELAY_PORT: String(ports.ws),
        NORAY_TCPRELAY_PORT: String(ports.tcp),
        NORAY_LOBBY_HTTP_PORT: String(ports.lobby),
        NORAY_LOBBY_UDP_PORT: String(ports.lobbyUdp),
        NORAY_LOGLEVEL: 'info',
        ...extraEnv,
      }),
    });
    nodes.set(host, run);
    await run.waitForLog('noray ready');
    return run;
  }

  async function startCluster(extraEnv: Record<string, string> = {}): Promise<void> {
    for (let i = 0; i < HOSTS.length; i++) await startNode(i, extraEnv);
    // Every node has seen the others at least once (a sweep is 250 ms).
    await new Promise((done) => setTimeout(done, 600));
  }

  /** A CarParty peer on the node at `host`, its login sent. */
  async function openWs(host: string, login: object): Promise<WsPeer> {
    const peer = await WsPeer.open(ports.ws, '/', {}, host);
    cleanups.push(() => peer.close());
    peer.send(login);
    return peer;
  }

  /** A netfox player on the node at `host`: register-host, then its UDP address through that node's registrar. */
  async function player(host: string): Promise<NetfoxClient> {
    const client = await NetfoxClient.connect(ports.control, host, host);
    cleanups.push(() => client.close());
    await client.registerHost();
    expect(await client.registerRemote(ports.registrar)).toBe('OK');
    return client;
  }

  /** A wsrelay game server on n1 and its phone `p` on n2, the server told of the phone. */
  async function roomWithPhone(code: string): Promise<{ server: WsPeer; phone: WsPeer }> {
    const server = await openWs(HOSTS[0], { action: 'login_server', server_code: code });
    await new Promise((done) => setTimeout(done, 100));
    const phone = await openWs(HOSTS[1], { action: 'login_client', server_code: code, client_id: 'p' });
    expect(JSON.parse(await server.next())).toEqual({ action: 'connect', client_id: 'p' });
    return { server, phone };
  }

  it('wsrelay: a game server on n1, phones on n2 and n3: every routing rule holds, in order', async () => {
    await startCluster();
    const server = await openWs(HOSTS[0], { action: 'login_server', server_code: 'ROOM' });
    await new Promise((done) => setTimeout(done, 100));
    const p2 = await openWs(HOSTS[1], { action: 'login_client', server_code: 'ROOM', client_id: 'p2' });
    expect(JSON.parse(await server.next())).toEqual({ action: 'connect', client_id: 'p2' });
    const p3 = await openWs(HOSTS[2], { action: 'login_client', server_code: 'ROOM', client_id: 'p3' });
    expect(JSON.parse(await server.next())).toEqual({ action: 'connect', client_id: 'p3' });
    for (let i = 0; i < 30; i++) p2.send({ i });
    for (let i = 0; i < 30; i++) expect(JSON.parse(await server.next())).toEqual({ i, client_id: 'p2' });
    server.send({ broadcast: 1 });
    expect(JSON.parse(await p2.next())).toEqual({ broadcast: 1 });
    expect(JSON.parse(await p3.next())).toEqual({ broadcast: 1 });
    server.send({ only: 3, receiver_id: 'p3' });
    expect(JSON.parse(await p3.next())).toMatchObject({ only: 3 });
    await p3.close();
    expect(JSON.parse(await server.next())).toEqual({ action: 'disconnect', client_id: 'p3' });
    expect(p2.received).toHaveLength(1);
  });

  it('tcprelay: a MESSAGE to an id on another node arrives in order; ERROR for unknown ids cluster-wide; ids unique cluster-wide', async () => {
    await startCluster();
    const alice = await RoccoClient.open(ports.tcp, HOSTS[0]);
    const bob = await RoccoClient.open(ports.tcp, HOSTS[2]);
    cleanups.push(() => alice.end(), () => bob.end());
    expect(await alice.init('alice')).toBe('alice');
    expect(await bob.init('bob')).toBe('bob');
    const thief = await RoccoClient.open(ports.tcp, HOSTS[1]);
    cleanups.push(() => thief.end());
    thief.send({ payloadType: 'INIT', source: 'alice' });
    expect(await thief.next()).toMatchObject({ payloadType: 'ERROR' });
    for (let i = 0; i < 30; i++) alice.message('bob', `m${i}`);
    for (let i = 0; i < 30; i++) expect(await bob.next()).toMatchObject({ payloadType: 'MESSAGE', source: 'alice', payload: `m${i}` });
    alice.message('nobody', 'x');
    expect(await alice.next()).toMatchObject({ payloadType: 'ERROR' });
  });

  it('noray: a host registered on n1 and a client on n2 get each other\'s address with connect', async () => {
    await startCluster();
    const host = await player(HOSTS[0]);
    const client = await player(HOSTS[1]);
    client.putCommand('connect', host.oid);
    expect(await client.next('connect')).toBe(`${HOSTS[0]}:${host.localPort}`);
    expect(await host.next('connect')).toBe(`${HOSTS[1]}:${client.localPort}`);
  });

  it.each(relayEngineKinds())('noray: connect-relay between a host on n1 and a client on n2 relays both ways, each side sending to the node it opened TCP to [%s engine]', async (engine) => {
    await startCluster({ NORAY_UDP_RELAY_ENGINE: engine });
    const host = await player(HOSTS[0]);
    const client = await player(HOSTS[1]);
    client.putCommand('connect-relay', host.oid);
    const hostRelayPort = Number(await client.next('connect-relay'));
    const clientRelayPort = Number(await host.next('connect-relay'));
    for (const relayPort of [hostRelayPort, clientRelayPort]) {
      expect(relayPort).toBeGreaterThanOrEqual(ports.relay);
      expect(relayPort).toBeLessThan(ports.relay + RELAY_PORTS);
    }
    const hostUdp = await bindLocalPort(host.localPort, HOSTS[0]);
    const clientUdp = await bindLocalPort(client.localPort, HOSTS[1]);
    cleanups.push(() => hostUdp.close(), () => clientUdp.close());
    const heard = (socket: typeof hostUdp) =>
      new Promise<{ text: string; from: string }>((done) =>
        socket.once('message', (message, from) => done({ text: message.toString('utf8'), from: `${from.address}:${from.port}` })),
      );
    for (let round = 0; round < 3; round++) {
      const atHost = heard(hostUdp);
      clientUdp.send(`to host ${round}`, hostRelayPort, HOSTS[1]);
      // The host sees the client as n1's relay port: the one it was told and answers to.
      expect(await atHost).toEqual({ text: `to host ${round}`, from: `${HOSTS[0]}:${clientRelayPort}` });
      const atClient = heard(clientUdp);
      hostUdp.send(`to client ${round}`, clientRelayPort, HOSTS[0]);
      expect(await atClient).toEqual({ text: `to client ${round}`, from: `${HOSTS[1]}:${hostRelayPort}` });
    }
  });

  it('lobby: any node answers for any lobby; events and chat reach members on every node', async () => {
    await startCluster();
    const hostClient = await OrionClient.connectTo(HOSTS[0], ports.lobby);
    const guest2 = await OrionClient.connectTo(HOSTS[1], ports.lobby);
    const guest3 = await OrionClient.connectTo(HOSTS[2], ports.lobby);
    cleanups.push(() => hostClient.close(), () => guest2.close(), () => guest3.close());
    const created = await hostClient.createLobby({ isPublic: true, lobbyName: 'Across' });
    expect(created.status).toBe(201);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    expect((await guest2.join(lobbyId, 'Two')).status).toBe(200);
    expect((await guest3.join(lobbyId, 'Three')).status).toBe(200);
    expect(await hostClient.next('lobby_peerConnect')).toMatchObject({ peerName: 'Two' });
    expect(await guest2.next('lobby_peerConnect')).toMatchObject({ peerName: 'Three' });
    guest3.chat(lobbyId, 'hello from n3');
    for (const member of [hostClient, guest2]) {
      expect(await member.next('lobby_messaging_received')).toMatchObject({ message: { message: 'hello from n3', senderName: 'Three' } });
    }
  });

  it('lobby: mediation completes with members on three nodes, each sending its UDP packet to its own node', async () => {
    await startCluster();
    const [host, alice, bob] = await Promise.all(HOSTS.map((address) => OrionClient.connectTo(address, ports.lobby, ports.lobbyUdp)));
    if (!host || !alice || !bob) throw new Error('three clients');
    cleanups.push(() => host.close(), () => alice.close(), () => bob.close());
    const lobbyId = ((await host.createLobby({ lobbyName: 'Mediated' })).body as { lobbyId: string }).lobbyId;
    expect((await alice.join(lobbyId, 'Alice')).status).toBe(200);
    expect((await bob.join(lobbyId, 'Bob')).status).toBe(200);
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    for (const member of [host, alice, bob]) expect(await member.next('ptpMediation_send')).toEqual({ port: ports.lobbyUdp });
    const hostPort = await host.sendUdp();
    const alicePort = await alice.sendUdp();
    const bobPort = await bob.sendUdp();
    expect(await host.next('ptpMediation_peersConnection_start')).toEqual({
      peers: [
        { ip: HOSTS[1], port: alicePort },
        { ip: HOSTS[2], port: bobPort },
      ],
    });
    for (const member of [alice, bob]) {
      expect(await member.next('ptpMediation_peersConnection_start')).toEqual({ peers: [{ ip: HOSTS[0], port: hostPort }] });
    }
    for (const member of [host, alice, bob]) member.sendWs('ptpMediation_peersConnection_success', { token: member.token });
    for (const member of [host, alice, bob]) {
      expect(await member.next('ptpMediation_success')).toEqual({});
      expect(await member.next('lobby_closed')).toEqual({ lobbyId, lobbyName: 'Mediated' });
    }
  });

  it('a node killed in the middle of a relayed session: the host on a live node keeps its OpenID and a client on another node relays to it again', async () => {
    await startCluster();
    const host = await player(HOSTS[0]);
    const first = await player(HOSTS[1]);
    first.putCommand('connect-relay', host.oid);
    await first.next('connect-relay');
    await host.next('connect-relay');
    nodes.get(HOSTS[1])?.child.kill('SIGKILL');
    await nodes.get(HOSTS[1])?.exited;
    // n2's sessions are purged within the timeout; the host on n1 is untouched.
    const second = await player(HOSTS[2]);
    second.putCommand('connect-relay', host.oid);
    const hostRelayPort = Number(await second.next('connect-relay'));
    const clientRelayPort = Number(await host.next('connect-relay'));
    const hostUdp = await bindLocalPort(host.localPort, HOSTS[0]);
    const clientUdp = await bindLocalPort(second.localPort, HOSTS[2]);
    cleanups.push(() => hostUdp.close(), () => clientUdp.close());
    const atHost = new Promise<string>((done) => hostUdp.once('message', (message) => done(message.toString('utf8'))));
    clientUdp.send('after the crash', hostRelayPort, HOSTS[2]);
    expect(await atHost).toBe('after the crash');
    const atClient = new Promise<string>((done) => clientUdp.once('message', (message) => done(message.toString('utf8'))));
    hostUdp.send('back', clientRelayPort, HOSTS[0]);
    expect(await atClient).toBe('back');
  });

  it('a node killed with SIGKILL: its rooms, lobbies and sessions are gone cluster-wide within the timeout, and peers on other nodes are told', async () => {
    await startCluster();
    const { phone } = await roomWithPhone('DOOMED');
    const lobbyHost = await OrionClient.connectTo(HOSTS[0], ports.lobby);
    const member = await OrionClient.connectTo(HOSTS[2], ports.lobby);
    cleanups.push(() => member.close());
    const lobbyId = ((await lobbyHost.createLobby({ isPublic: true })).body as { lobbyId: string }).lobbyId;
    expect((await member.join(lobbyId, 'M')).status).toBe(200);
    const alice = await RoccoClient.open(ports.tcp, HOSTS[0]);
    expect(await alice.init('alice')).toBe('alice');

    const killedAt = Date.now();
    nodes.get(HOSTS[0])?.child.kill('SIGKILL');
    // The phone's room closes (its server's node is gone); the lobby closes for its member.
    expect((await phone.closed).code).toBe(1000);
    expect(await member.next('lobby_closed', 10_000)).toMatchObject({ lobbyId });
    const elapsed = Date.now() - killedAt;
    expect(elapsed).toBeLessThan(10_000);
    // The ids are free again cluster-wide, and nothing of n1 is listed.
    const bob = await RoccoClient.open(ports.tcp, HOSTS[1]);
    cleanups.push(() => bob.end());
    await eventually(async () => {
      bob.send({ payloadType: 'INIT', source: 'alice' });
      const reply = await bob.next();
      return reply.payloadType === 'INIT';
    }, 10_000);
    const lobbies = (await (await fetch(`http://${HOSTS[1]}:${ports.lobby}/lobbies`)).json()) as { lobbies: unknown[] };
    expect(lobbies.lobbies).toEqual([]);
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    const left = (await client.keys('*')).filter((key) => /(^|[:/])n1([:/]|$)/.test(key));
    expect(left).toEqual([]);
    expect(await client.sMembers('noray:{noray}:nodes')).not.toContain('n1');
    await client.close();
  });

  it('a node stopped with SIGTERM drains: its state is removed at once, nobody waits for a timeout', async () => {
    await startCluster();
    const { phone } = await roomWithPhone('DRAIN');
    const stoppedAt = Date.now();
    nodes.get(HOSTS[0])?.child.kill('SIGTERM');
    expect((await phone.closed).code).toBe(1000);
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    expect(await nodes.get(HOSTS[0])?.exit()).toEqual({ code: 0, signal: null });
  });
});
