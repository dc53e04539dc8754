// `noray --workers 2`: the real bin forks two cluster nodes on one host over a real Redis. The
// TCP listeners and the registrar are shared by node:cluster (connections go round-robin to the
// workers), each worker binds its own relay ports. Clients are the original ones, unchanged.
import { createSocket } from 'node:dgram';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, configWith, resolveConfig } from '../../src/config/load.js';
import { runDoctor } from '../../src/doctor/cli.js';
import type { DoctorReport } from '../../src/doctor/report.js';
import { relayPortsOf, workerConfig, workerProblems } from '../../src/workers.js';
import { WsPeer } from '../clients/carparty.js';
import { bindLocalPort, NetfoxClient } from '../clients/netfox.js';
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js';
import { cleanEnv, Run, type LogLine } from '../helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');
const HOST = '127.0.0.1';
const RELAY_PORTS = 8;
const missing = redisMissing();
const onCi = process.env.CI === 'true';

/** A run of RELAY_PORTS consecutive UDP ports free on HOST. */
async function freeRelayRange(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((done) => {
      const socket = createSocket('udp4');
      socket.once('error', () => {
        socket.close();
        done(false);
      });
      socket.bind(port, HOST, () => socket.close(() => done(true)));
    });
  for (;;) {
    const first = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let port = first; port < first + RELAY_PORTS && ok; port++) ok = await free(port);
    if (ok) return first;
  }
}

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  return cleanEnv({
    NORAY_SOCKET_HOST: HOST,
    NORAY_UDP_HOST: HOST,
    NORAY_WSRELAY_HOST: HOST,
    NORAY_HTTP_HOST: HOST,
    NORAY_SOCKET_PORT: '0',
    NORAY_UDP_REGISTRAR_PORT: '0',
    NORAY_STUN_ALT_PORT: '0',
    NORAY_WSRELAY_PORT: '0',
    NORAY_HTTP_PORT: '0',
    NORAY_TCPRELAY_HOST: HOST,
    NORAY_LOBBY_HOST: HOST,
    NORAY_TCPRELAY_PORT: '0',
    NORAY_LOBBY_HTTP_PORT: '0',
    NORAY_LOBBY_UDP_PORT: '0',
    ...extra,
  });
}

interface ReadyPorts {
  noray: { control: number; registrar: number; stunAlt: number; relay: number[] };
  wsrelay: { ws: number };
}

describe('the workers\' configs', () => {
  const base = configWith({ redisUrl: 'redis://127.0.0.1:6379', udpRelayPorts: [10, 11, 12, 13, 14, 15, 16], workers: 3 });

  it('NORAY_WORKERS: a count from 1, or auto for one per core', () => {
    expect(resolveConfig({ flags: { workers: '4' } }).config.workers).toBe(4);
    expect(resolveConfig({ env: { NORAY_WORKERS: 'auto' } }).config.workers).toBe(availableParallelism());
    expect(resolveConfig({}).config.workers).toBe(1);
    expect(() => resolveConfig({ flags: { workers: '0' } })).toThrow(/NORAY_WORKERS .*whole number from 1/);
    expect(() => resolveConfig({ flags: { workers: 'two' } })).toThrow(ConfigError);
  });

  it('worker i takes relay ports i, i+N, ... with its share of the minimum; ids get -w<i>', () => {
    expect([0, 1, 2].map((index) => relayPortsOf([10, 11, 12, 13, 14, 15, 16], index, 3))).toEqual([
      [10, 13, 16],
      [11, 14],
      [12, 15],
    ]);
    const config = workerConfig({ ...base, udpRelayMinPorts: 7 }, { index: 1, count: 3, nodeId: 'edge-w1' });
    expect(config).toMatchObject({ nodeId: 'edge-w1', udpRelayPorts: [11, 14], udpRelayMinPorts: 2 });
    expect(workerConfig(base, { index: 2, count: 3, nodeId: 'x-w2' }).udpRelayMinPorts).toBe(1);
    expect(workerConfig({ ...base, udpRelayPorts: null }, { index: 0, count: 3, nodeId: 'x-w0' }).udpRelayPorts).toBeNull();
  });

  it('refuses more workers than relay ports, and workers without Redis', () => {
    expect(workerProblems(base)).toEqual([]);
    expect(workerProblems({ ...base, workers: 1, redisUrl: null })).toEqual([]);
    expect(workerProblems({ ...base, workers: 8 }).join()).toContain('NORAY_UDP_RELAY_PORTS has 7 ports for NORAY_WORKERS=8');
    expect(workerProblems({ ...base, redisUrl: null }).join()).toContain('NORAY_WORKERS=3 needs NORAY_REDIS_URL');
  });
});

describe('noray --workers 2 without NORAY_REDIS_URL', () => {
  it('exits 2 and says the workers need Redis', async () => {
    const run = new Run(process.execPath, [BIN, '--workers', '2'], { cwd: ROOT, env: env({}) });
    expect(await run.exit()).toEqual({ code: 2, signal: null });
    expect(run.stderr).toContain('NORAY_WORKERS=2 needs NORAY_REDIS_URL');
    expect(run.stdout).toBe('');
  });
});

describe.skipIf(missing !== null && !onCi)('noray --workers 2 over a real Redis', () => {
  let redis: RedisServer;
  let relayFirst: number;
  let run: Run | null = null;
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    if (missing !== null) throw new Error(`${missing}: required on CI`);
    redis = await startRedis();
    relayFirst = await freeRelayRange();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await Promise.resolve(cleanup()).catch(() => undefined);
    // SIGTERM first: the workers drain, so the next test's workers (same node ids) are not
    // refused as duplicates of live nodes; SIGKILL only if that hangs.
    if (run?.running) {
      run.child.kill('SIGTERM');
      await run.exit(15_000).catch(() => run?.child.kill('SIGKILL'));
    }
    await run?.exited.catch(() => undefined);
    run = null;
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    await client.flushAll();
    await client.close();
  });
  afterAll(async () => redis?.stop());

  const readyLines = (r: Run): LogLine[] => r.logs.filter((line) => line.msg === 'noray ready');

  async function waitUntil(check: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout:\n${run?.stdout}\nstderr:\n${run?.stderr}`);
      await new Promise((done) => setTimeout(done, 50));
    }
  }

  /** Starts the bin with two workers and waits until both are ready; returns their ports. */
  async function startWorkers(logLevel = 'info'): Promise<{ run: Run; ports: ReadyPorts }> {
    const started = new Run(process.execPath, [BIN, '--workers', '2'], {
      cwd: ROOT,
      env: env({
        NORAY_REDIS_URL: redis.url,
        NORAY_NODE_ID: 'wt',
        NORAY_NODE_HEARTBEAT: '250ms',
        NORAY_NODE_TIMEOUT: '1s',
        NORAY_UDP_RELAY_PORTS: `${relayFirst}-${relayFirst + RELAY_PORTS - 1}`,
        NORAY_LOGLEVEL: logLevel,
      }),
    });
    run = started;
    await waitUntil(() => readyLines(started).length >= 2, 'two "noray ready" lines');
    const ready = readyLines(started);
    expect(ready.map((line) => line.node).sort()).toEqual(['wt-w0', 'wt-w1']);
    const [first, second] = ready.map((line) => line.ports as ReadyPorts) as [ReadyPorts, ReadyPorts];
    // Shared listeners: one port for both workers. Relay ports: each its own half, interleaved.
    expect(second.noray.control).toBe(first.noray.control);
    expect(second.noray.registrar).toBe(first.noray.registrar);
    expect(second.wsrelay.ws).toBe(first.wsrelay.ws);
    // Every other listener too (tcprelay, lobby HTTP and UDP, ops): the same ports on both.
    const withoutRelay = (ports: ReadyPorts) => ({ ...ports, noray: { ...ports.noray, relay: [] } });
    expect(withoutRelay(second)).toEqual(withoutRelay(first));
    expect(Object.keys(first).sort()).toEqual(['lobby', 'noray', 'ops', 'tcprelay', 'wsrelay']);
    const relays = ready.map((line) => [line.node, (line.ports as ReadyPorts).noray.relay] as const);
    for (const [node, ports] of relays) {
      const index = node === 'wt-w0' ? 0 : 1;
      expect(ports).toEqual(Array.from({ length: RELAY_PORTS / 2 }, (_, i) => relayFirst + index + 2 * i));
    }
    // Every worker has seen the other at least once (a sweep is 250 ms).
    await new Promise((done) => setTimeout(done, 600));
    return { run: started, ports: first };
  }

  it('both workers serve: a wsrelay game server and phones spread over both workers relay, and SIGTERM drains both and exits 0', async () => {
    const { run: r, ports } = await startWorkers('debug');
    const open = async (login: object) => {
      const peer = await WsPeer.open(ports.wsrelay.ws, '/', {}, HOST);
      cleanups.push(() => peer.close());
      peer.send(login);
      return peer;
    };
    const server = await open({ action: 'login_server', server_code: 'ROOM' });
    await new Promise((done) => setTimeout(done, 100));
    const phones: WsPeer[] = [];
    for (let i = 0; i < 6; i++) {
      phones.push(await open({ action: 'login_client', server_code: 'ROOM', client_id: `p${i}` }));
      expect(JSON.parse(await server.next())).toEqual({ action: 'connect', client_id: `p${i}` });
    }
    // The phones landed on both workers (round-robin), the game server on one of them.
    const loggedIn = r.logs.filter((line) => line.msg === 'client logged in');
    expect(new Set(loggedIn.map((line) => line.node))).toEqual(new Set(['wt-w0', 'wt-w1']));
    for (const [i, phone] of phones.entries()) {
      for (let n = 0; n < 5; n++) phone.send({ i, n });
    }
    const got = new Map<string, number[]>();
    for (let k = 0; k < phones.length * 5; k++) {
      const message = JSON.parse(await server.next()) as { i: number; n: number; client_id: string };
      expect(message.client_id).toBe(`p${message.i}`);
      got.set(message.client_id, [...(got.get(message.client_id) ?? []), message.n]);
    }
    // Each phone's messages in order, whichever worker it is on.
    for (let i = 0; i < phones.length; i++) expect(got.get(`p${i}`)).toEqual([0, 1, 2, 3, 4]);
    server.send({ broadcast: 1 });
    for (const phone of phones) expect(JSON.parse(await phone.next())).toEqual({ broadcast: 1 });
    server.send({ only: 3, receiver_id: 'p3' });
    expect(JSON.parse(await (phones[3] as WsPeer).next())).toMatchObject({ only: 3 });

    const workerPids = r.logs.filter((line) => line.msg === 'worker started').map((line) => line.osPid as number);
    expect(workerPids).toHaveLength(2);
    r.child.kill('SIGTERM');
    for (const phone of phones) expect((await phone.closed).code).toBeGreaterThanOrEqual(1000);
    expect(await r.exit()).toEqual({ code: 0, signal: null });
    const stopped = r.logs.filter((line) => line.msg === 'worker stopped');
    expect(stopped.map((line) => [line.node, line.code]).sort()).toEqual([
      ['wt-w0', 0],
      ['wt-w1', 0],
    ]);
    expect(r.logs.filter((line) => line.msg === 'noray stopped')).toHaveLength(2);
    for (const pid of workerPids) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);

  it('netfox connect-relay between a host and a client on different workers relays both ways', async () => {
    const { ports } = await startWorkers();
    const host = await NetfoxClient.connect(ports.noray.control, HOST, HOST);
    const client = await NetfoxClient.connect(ports.noray.control, HOST, HOST);
    cleanups.push(() => host.close(), () => client.close());
    await host.registerHost();
    await client.registerHost();
    expect(await host.registerRemote(ports.noray.registrar)).toBe('OK');
    expect(await client.registerRemote(ports.noray.registrar)).toBe('OK');
    client.putCommand('connect-relay', host.oid);
    const hostRelayPort = Number(await client.next('connect-relay'));
    const clientRelayPort = Number(await host.next('connect-relay'));
    // Worker i owns the ports at positions i, i+2, ...: the two control connections went to
    // different workers (round-robin), so the bridge joined two workers' relays.
    expect((hostRelayPort - relayFirst) % 2).not.toBe((clientRelayPort - relayFirst) % 2);
    const hostUdp = await bindLocalPort(host.localPort, HOST);
    const clientUdp = await bindLocalPort(client.localPort, HOST);
    cleanups.push(() => hostUdp.close(), () => clientUdp.close());
    const heard = (socket: typeof hostUdp) =>
      new Promise<{ text: string; from: string }>((done) =>
        socket.once('message', (message, from) => done({ text: message.toString('utf8'), from: `${from.address}:${from.port}` })),
      );
    for (let round = 0; round < 3; round++) {
      const atHost = heard(hostUdp);
      clientUdp.send(`to host ${round}`, hostRelayPort, HOST);
      expect(await atHost).toEqual({ text: `to host ${round}`, from: `${HOST}:${clientRelayPort}` });
      const atClient = heard(clientUdp);
      hostUdp.send(`to client ${round}`, clientRelayPort, HOST);
      expect(await atClient).toEqual({ text: `to client ${round}`, from: `${HOST}:${hostRelayPort}` });
    }
  }, 60_000);

  it('noray doctor finds nothing wrong: STUN on the shared registrar and alt ports, relay across the workers', async () => {
    const { ports } = await startWorkers();
    let out = '';
    const code = await runDoctor(
      [HOST, '--json', '--port', String(ports.noray.control), '--registrar-port', String(ports.noray.registrar), '--stun-port', String(ports.noray.stunAlt), '--relay-clients', '1'],
      { write: (text: string) => void (out += text) },
      { write: () => undefined },
    );
    const report = JSON.parse(out) as DoctorReport;
    expect(code, out).toBe(0);
    expect(report.seen.fromAltPort).toBe(report.seen.fromRegistrarPort);
    expect(report.checks.map((check) => check.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  }, 60_000);

  it('a worker that dies is restarted under a new node id, with its relay ports', async () => {
    const { run: r } = await startWorkers();
    const first = r.logs.find((line) => line.msg === 'worker started' && line.node === 'wt-w0');
    process.kill(first?.osPid as number, 'SIGKILL');
    await waitUntil(() => readyLines(r).some((line) => line.node === 'wt-w0-r1'), 'the restarted worker to be ready');
    const died = r.logs.find((line) => line.msg === 'worker died, restarting');
    expect(died).toMatchObject({ node: 'wt-w0', signal: 'SIGKILL', nextNode: 'wt-w0-r1' });
    const again = readyLines(r).find((line) => line.node === 'wt-w0-r1');
    expect((again?.ports as ReadyPorts).noray.relay).toEqual([0, 2, 4, 6].map((i) => relayFirst + i));
    r.child.kill('SIGTERM');
    expect(await r.exit()).toEqual({ code: 0, signal: null });
  }, 60_000);
});
