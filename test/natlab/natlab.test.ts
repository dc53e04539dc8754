// The NAT lab: netfox.noray games behind real Linux NATs (network namespaces + iptables) talking
// to the built server (dist/) on a TEST-NET address. What it proves:
//  1. punchthrough (`connect OID`) works between easy, full-cone and other cone NATs, with game
//     traffic arriving straight from the peer's router;
//  2. it fails between symmetric NATs (so the NATs are real);
//  3. the relay (`connect-relay OID`) works whatever the NAT: symmetric on either side or both,
//     two players behind one router, host and client behind one router;
//  4. a NAT rebinding mid-game is survived through netfox's re-registration;
//  5. `connect` lines carry router WAN addresses, never LAN ones.
// It ends with a table: per profile pair, punchthrough yes/no, relay yes/no, time to connect.
//
// Needs root, iproute2, iptables (NAT inside namespaces) and conntrack: skipped with a message
// otherwise, except on CI as root, where a missing capability fails the suite.
//
// Every scenario starts at once in beforeAll (each on its own players, sockets and NAT mappings)
// and each test awaits and checks its own, so the expected failures' 8 s handshake timeouts run
// side by side instead of one after another.
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Agent,
  CONTROL_PORT,
  ensureBuilt,
  HTTP_PORT,
  Lab,
  probeCapability,
  REGISTRAR_PORT,
  RELAY_PORTS,
  removeStaleNamespaces,
  runStatus,
  SERVER_IP,
  STUN_ALT_PORT,
  type OpenSpec,
  type Profile,
  type RouterSpec,
} from './lab.js';
import type { DoctorReport } from '../../src/doctor/report.js';
import { onCi, stunClientMissing } from '../helpers/stun-client.js';
import type { StreamCheck } from './payload.js';
import type { Address, Command, Requests } from './protocol.js';

// ---------------------------------------------------------------------------------------------
// The lab's network

const ROUTERS: readonly RouterSpec[] = [
  { name: 'easy1', profile: 'easy', wan: '203.0.113.11', lan: '10.11.0', machines: 2 },
  { name: 'easy2', profile: 'easy', wan: '203.0.113.12', lan: '10.12.0', machines: 2 },
  // Only the rebinding test touches this one's rules.
  { name: 'easy3', profile: 'easy', wan: '203.0.113.13', lan: '10.13.0', machines: 1 },
  { name: 'full1', profile: 'fullcone', wan: '203.0.113.21', lan: '10.21.0', machines: 1 },
  { name: 'full2', profile: 'fullcone', wan: '203.0.113.22', lan: '10.22.0', machines: 1 },
  { name: 'sym1', profile: 'symmetric', wan: '203.0.113.31', lan: '10.31.0', machines: 2 },
  { name: 'sym2', profile: 'symmetric', wan: '203.0.113.32', lan: '192.168.32', machines: 2 },
  { name: 'restr1', profile: 'restricted', wan: '203.0.113.41', lan: '192.168.41', machines: 1 },
  // An easy NAT whose firewall drops UDP to the server's relay range: only `noray doctor` runs here.
  { name: 'fw1', profile: 'easy', wan: '203.0.113.51', lan: '10.51.0', machines: 1, blockUdpPorts: RELAY_PORTS.replace('-', ':') },
];
const OPEN: OpenSpec = { name: 'open', address: '203.0.113.50' };
const LAN_PREFIXES = ROUTERS.map((router) => `${router.lan}.`);

/** Game traffic pace per flow: 1000 datagrams (~600 KB) in about 3 s. */
const RELAY_RATE = 200 * 1024;
/**
 * Per-player relay limit of the lab's server, raised from the default 128kb/s: a host relaying to
 * two clients sends 400 KB/s, and the limiter counts bytes when the server reads them, so a server
 * starved of CPU for half a second (a busy 2-core CI machine) reads paced traffic as one burst. At
 * 64mb/s one 100 ms slice allows more than a relay socket's whole 4 MB buffer.
 */
const RELAY_LIMIT = '64mb';
const HANDSHAKE_MS = 8000;
/** How long a control line (connect, connect-relay) may take to arrive. */
const CONTROL_REPLY_MS = 15_000;
/**
 * After its sender is done, a flow is checked once all its datagrams are in, or nothing came for
 * QUIET_MS, or IN_FLIGHT_MS passed: long enough for a server starved of CPU to catch up, short
 * enough that a flow the NAT blocks does not hold up the suite.
 */
const QUIET_MS = 3000;
const IN_FLIGHT_MS = 15_000;
/**
 * Game-traffic senders running at once. Handshakes (and the expected failures' timeouts) all run
 * side by side, but a few MB/s of relayed traffic from every scenario together would starve a
 * server sharing two cores with the agents and other test files.
 */
const TRAFFIC_SLOTS = 3;

interface Machine {
  /** Router name + a, b, ... (machine .2, .3, ...), or `open`. */
  readonly key: string;
  readonly agent: Agent;
  /** Its own (LAN) address. */
  readonly address: string;
  readonly profile: Profile;
  /** The address the internet sees it as. */
  readonly publicIp: string;
  readonly router: RouterSpec | null;
}

const lab = new Lab();
const machines = new Map<string, Machine>();

function machine(key: string): Machine {
  const found = machines.get(key);
  if (!found) throw new Error(`no machine ${key}`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// Players: one netfox.noray game each

type Req<C extends Command> = Omit<Requests[C]['req'], 'player'>;
let playerCount = 0;

class Player {
  constructor(
    readonly machine: Machine,
    readonly name: string,
    readonly oid: string,
    public localPort: number,
    readonly tcpLocal: Address,
  ) {}

  call<C extends Command>(cmd: C, req: Req<C>): Promise<Requests[C]['res']> {
    return this.machine.agent.call(cmd, { ...req, player: this.name } as Requests[C]['req']);
  }

  close(): Promise<unknown> {
    return this.call('close', {}).catch(() => undefined);
  }
}

/** register-host, register_remote, and the game socket (ENet's) on the registered local port. */
async function newPlayer(m: Machine, role: string): Promise<Player> {
  const name = `${role}${++playerCount}`;
  const opened = await m.agent.call('open', { player: name, bind: m.address, server: SERVER_IP, tcpPort: CONTROL_PORT });
  const registered = await m.agent.call('registerRemote', { player: name, registrarPort: REGISTRAR_PORT });
  if (registered.result !== 'OK') throw new Error(`${m.key}: register_remote ${registered.result}`);
  await m.agent.call('bindGame', { player: name });
  return new Player(m, name, opened.oid, registered.localPort, opened.tcpLocal);
}

interface Flow {
  readonly sender: Player;
  /** Where the sender sends (its connect line). */
  readonly to: Address;
  readonly receiver: Player;
  /** Where the receiver must see the datagrams come from. */
  readonly seenFrom: Address;
}

interface FlowResult extends StreamCheck {
  readonly label: string;
  readonly count: number;
  /** Where the datagrams had to come from. */
  readonly seenFrom: Address;
  readonly sources: Record<Address, number>;
}

/**
 * Game traffic on every flow at once: count datagrams of random sizes each, checked byte for byte
 * once the sender is done (plus a grace period for what is still in flight), so a starved machine
 * that sends slowly is not mistaken for loss.
 */
async function exchange(flows: readonly Flow[], count: number, bytesPerSecond = RELAY_RATE): Promise<FlowResult[]> {
  const seeds = flows.map(() => randomInt(2 ** 31));
  await trafficSlots.run(async () => {
    // Each check starts from nothing: earlier traffic on the same addresses does not count.
    await Promise.all(flows.map((flow) => flow.receiver.call('clearInbox', { from: flow.seenFrom })));
    await Promise.all(flows.map((flow, i) => flow.sender.call('send', { to: flow.to, seed: seeds[i] ?? 0, count, bytesPerSecond })));
  });
  return Promise.all(
    flows.map(async (flow, i) => {
      const check = await flow.receiver.call('verify', { from: flow.seenFrom, seed: seeds[i] ?? 0, count, quietMs: QUIET_MS, timeoutMs: IN_FLIGHT_MS });
      return { ...check, count, seenFrom: flow.seenFrom, label: `${flow.sender.machine.key}→${flow.receiver.machine.key}` };
    }),
  );
}

/** At most `size` tasks at once; the rest wait in order. */
class Slots {
  private free: number;
  private readonly queue: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.free++;
    }
  }
}
const trafficSlots = new Slots(TRAFFIC_SLOTS);

const intact = (flow: FlowResult) => flow.received === flow.count && flow.intactInOrder === flow.count && flow.badChecksums === 0;

function describeFlow(flow: FlowResult): string {
  if (intact(flow)) return `${flow.label} ${flow.count}/${flow.count}`;
  const sources = Object.entries(flow.sources)
    .map(([from, n]) => `${from}×${n}`)
    .join(' ');
  return `${flow.label} ${flow.intactInOrder}/${flow.count} intact (got ${flow.received}, first bad #${flow.firstMismatch}, sources: ${sources || 'none'})`;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Attempt {
  readonly ok: boolean;
  readonly handshake: boolean;
  /** From the client's connect request to its handshake's success. */
  readonly connectMs: number | null;
  /** The handshake alone (PacketHandshake's own time). */
  readonly handshakeMs: number | null;
  readonly flows: FlowResult[];
  readonly detail: string;
}

interface PunchAttempt extends Attempt {
  readonly host: Player;
  readonly client: Player;
  /** `connect` line the client got (the host's address) and the one the host got. */
  readonly toHost: string;
  readonly toClient: string;
  /** External ports the host's NAT gave its local port (from the router's conntrack). */
  readonly hostMappings: number[];
}

interface RelayAttempt extends Attempt {
  /** connect-relay lines: per client, the port it was told and the port its host was told. */
  readonly lines: Array<{ toHost: string; toClient: string }>;
}

const ipPort = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/;

/** The external ports a router's conntrack holds for one LAN address and port (UDP). */
async function mappingsOf(router: RouterSpec, address: string, port: number): Promise<number[]> {
  const out = await lab.exec(lab.routerNs(router), 'conntrack', ['-L', '-p', 'udp']).catch(() => '');
  const ports = new Set<number>();
  for (const line of out.split('\n')) {
    const match = /src=(\S+) dst=\S+ sport=(\d+) dport=\d+ .*src=\S+ dst=\S+ sport=\d+ dport=(\d+)/.exec(line);
    if (match && match[1] === address && Number(match[2]) === port) ports.add(Number(match[3]));
  }
  return [...ports].sort((a, b) => a - b);
}

/** Netfox NAT punchthrough: `connect OID`, the host blasts `$rwx`, the client handshakes, then game traffic. */
async function punchthrough(hostKey: string, clientKey: string, count: number): Promise<PunchAttempt> {
  const host = await newPlayer(machine(hostKey), 'host');
  const client = await newPlayer(machine(clientKey), 'client');
  try {
    const hostHears = host.call('awaitLine', { expect: ['connect'], timeoutMs: CONTROL_REPLY_MS });
    const started = Date.now();
    const toHost = await client.call('command', { name: 'connect', data: host.oid, expect: ['connect'], timeoutMs: CONTROL_REPLY_MS });
    const toClient = await hostHears;
    if (toHost.command !== 'connect' || toClient.command !== 'connect') {
      throw new Error(`connect refused: ${toHost.command} ${toHost.data} / ${toClient.command} ${toClient.data}`);
    }
    await host.call('blast', { to: toClient.data, durationMs: HANDSHAKE_MS });
    const handshake = await client.call('handshake', { to: toHost.data, timeoutMs: HANDSHAKE_MS });
    const connectMs = handshake.ok ? Date.now() - started : null;
    const handshakeMs = handshake.ok ? handshake.ms : null;
    const flows = handshake.ok
      ? await exchange(
          [
            { sender: client, to: toHost.data, receiver: host, seenFrom: toClient.data },
            { sender: host, to: toClient.data, receiver: client, seenFrom: toHost.data },
          ],
          count,
        )
      : [];
    const hostRouter = host.machine.router;
    const hostMappings = hostRouter ? await mappingsOf(hostRouter, host.machine.address, host.localPort) : [];
    const ok = handshake.ok && flows.every(intact);
    const detail = handshake.ok
      ? flows.map(describeFlow).join('; ')
      : `handshake timed out; client heard from ${handshake.from.join(', ') || 'nobody'}`;
    return { ok, handshake: handshake.ok, connectMs, handshakeMs, flows, detail, host, client, toHost: toHost.data, toClient: toClient.data, hostMappings };
  } finally {
    await Promise.all([host.close(), client.close()]);
  }
}

interface RelayLink {
  readonly client: Player;
  /** Relay port the client sends to (the host's), and the one the host sends to (the client's). */
  readonly hostPort: Address;
  readonly clientPort: Address;
  readonly started: number;
}

/** `connect-relay OID` from each client in turn; returns each client's relay addresses. */
async function introduce(host: Player, clients: readonly Player[]): Promise<RelayLink[]> {
  const links: RelayLink[] = [];
  for (const client of clients) {
    const hostHears = host.call('awaitLine', { expect: ['connect-relay'], timeoutMs: CONTROL_REPLY_MS });
    const started = Date.now();
    const toHost = await client.call('command', { name: 'connect-relay', data: host.oid, expect: ['connect-relay'], timeoutMs: CONTROL_REPLY_MS });
    const toClient = await hostHears;
    if (toHost.command !== 'connect-relay' || toClient.command !== 'connect-relay') {
      throw new Error(`connect-relay refused: ${toHost.command} ${toHost.data} / ${toClient.command} ${toClient.data}`);
    }
    links.push({ client, hostPort: `${SERVER_IP}:${toHost.data}`, clientPort: `${SERVER_IP}:${toClient.data}`, started });
  }
  return links;
}

/** Godot host blasts `$rwx` at every client's relay port, each client handshakes with the host's. */
async function relayHandshakes(
  host: Player,
  links: readonly RelayLink[],
): Promise<Array<{ ok: boolean; ms: number | null; handshakeMs: number; from: Address[] }>> {
  for (const link of links) await host.call('blast', { to: link.clientPort, durationMs: HANDSHAKE_MS });
  return Promise.all(
    links.map(async (link) => {
      const result = await link.client.call('handshake', { to: link.hostPort, timeoutMs: HANDSHAKE_MS });
      return { ok: result.ok, ms: result.ok ? Date.now() - link.started : null, handshakeMs: result.ms, from: result.from };
    }),
  );
}

function relayFlows(host: Player, links: readonly RelayLink[]): Flow[] {
  return links.flatMap((link) => [
    { sender: link.client, to: link.hostPort, receiver: host, seenFrom: link.clientPort },
    { sender: host, to: link.clientPort, receiver: link.client, seenFrom: link.hostPort },
  ]);
}

/** Netfox relay: every client `connect-relay`s the host, handshakes through the relay, then game traffic. */
async function relay(hostKey: string, clientKeys: readonly string[], count: number): Promise<RelayAttempt> {
  const host = await newPlayer(machine(hostKey), 'host');
  const clients: Player[] = [];
  try {
    for (const key of clientKeys) clients.push(await newPlayer(machine(key), 'client'));
    const links = await introduce(host, clients);
    const handshakes = await relayHandshakes(host, links);
    const handshake = handshakes.every((h) => h.ok);
    const flows = handshake ? await exchange(relayFlows(host, links), count) : [];
    const ms = handshakes.map((h) => h.ms);
    const connectMs = handshake ? Math.max(...ms.map((m) => m ?? 0)) : null;
    const handshakeMs = handshake ? Math.max(...handshakes.map((h) => h.handshakeMs)) : null;
    const detail = handshake
      ? flows.map(describeFlow).join('; ')
      : handshakes.map((h, i) => `client ${clientKeys[i]}: ${h.ok ? 'handshake ok' : `handshake timed out, heard from ${h.from.join(', ') || 'nobody'}`}`).join('; ');
    const lines = links.map((link) => ({ toHost: link.hostPort, toClient: link.clientPort }));
    return { ok: handshake && flows.every(intact), handshake, connectMs, handshakeMs, flows, detail, lines };
  } finally {
    await Promise.all([host.close(), ...clients.map((client) => client.close())]);
  }
}

interface RebindAttempt extends Attempt {
  readonly before: FlowResult[];
  readonly oldLocalPort: number;
  readonly newLocalPort: number;
  readonly oldMapping: number[];
  readonly newMapping: number[];
  readonly reregistered: string;
}

const REBIND_PORTS = [20000, 20999] as const;

/**
 * A relayed game whose client's NAT rebinds mid-session: the router forgets every mapping and
 * maps to another port range from then on. netfox's answer: register_remote() again (a new UDP
 * socket on any port, which becomes local_port) and play on from that port to the same relay ports.
 */
async function rebinding(hostKey: string, clientKey: string, count: number): Promise<RebindAttempt> {
  const host = await newPlayer(machine(hostKey), 'host');
  const client = await newPlayer(machine(clientKey), 'client');
  const router = client.machine.router;
  if (!router) throw new Error('the rebinding client needs a router');
  const rns = lab.routerNs(router);
  try {
    const [link] = await introduce(host, [client]);
    if (!link) throw new Error('no relay link');
    const [first] = await relayHandshakes(host, [link]);
    if (!first?.ok) throw new Error(`relay handshake before the rebinding failed, heard from ${first?.from.join(', ') || 'nobody'}`);
    const before = await exchange(relayFlows(host, [link]), count);
    const oldLocalPort = client.localPort;
    const oldMapping = await mappingsOf(router, client.machine.address, oldLocalPort);

    // The NAT rebinds: a new port range, every mapping forgotten.
    await lab.exec(rns, 'iptables', ['-t', 'nat', '-I', 'POSTROUTING', '1', '-o', 'wan', '-p', 'udp', '-j', 'MASQUERADE', '--to-ports', REBIND_PORTS.join('-')]);
    await lab.exec(rns, 'conntrack', ['-F']).catch(() => '');

    // The game's ENet peer times out; netfox registers again and the game plays on from the new port.
    await client.call('closeGame', {});
    const again = await client.call('registerRemote', { registrarPort: REGISTRAR_PORT });
    client.localPort = again.localPort;
    await client.call('bindGame', {});
    const newMapping = await mappingsOf(router, client.machine.address, client.localPort);
    const started = Date.now();
    const [handshake] = await relayHandshakes(host, [{ ...link, started }]);
    const ok = handshake?.ok ?? false;
    const connectMs = ok ? Date.now() - started : null;
    const flows = ok ? await exchange(relayFlows(host, [link]), count) : [];
    const detail = ok ? flows.map(describeFlow).join('; ') : `handshake after re-registration timed out, heard from ${handshake?.from.join(', ') || 'nobody'}`;
    return {
      ok: ok && before.every(intact) && flows.every(intact),
      handshake: ok,
      connectMs,
      handshakeMs: ok ? (handshake?.handshakeMs ?? null) : null,
      flows,
      detail,
      before,
      oldLocalPort,
      newLocalPort: again.localPort,
      oldMapping,
      newMapping,
      reregistered: again.result,
    };
  } finally {
    await Promise.all([host.close(), client.close()]);
  }
}

// ---------------------------------------------------------------------------------------------
// noray doctor and STUN from lab machines

interface DoctorRun {
  readonly code: number | null;
  readonly report: DoctorReport;
  /** The text report of a second run (what a person sees), for the results printout. */
  readonly text: string;
}

const DOCTOR_ARGS = [SERVER_IP, '--stun-port', String(STUN_ALT_PORT), '--relay-ports', RELAY_PORTS];

/** `noray doctor` on a machine's namespace, with --json (asserted) and at the same time as text (shown). */
async function doctorOn(key: string): Promise<DoctorRun> {
  const ns = machine(key).agent.namespace;
  const [json, text] = await Promise.all([lab.doctor(ns, [...DOCTOR_ARGS, '--json']), lab.doctor(ns, DOCTOR_ARGS)]);
  let report: DoctorReport;
  try {
    report = JSON.parse(json.stdout) as DoctorReport;
  } catch {
    throw new Error(`doctor on ${key} printed no JSON (exit ${json.code}): ${json.stdout}${json.stderr}`);
  }
  if (text.code !== json.code) throw new Error(`doctor on ${key}: exit ${json.code} with --json, ${text.code} without:\n${text.stdout}`);
  return { code: json.code, report, text: text.stdout };
}

const DOCTOR_MACHINES = ['easy1a', 'sym1a', 'fw1a', 'open'] as const;

interface ThirdPartyStun {
  /** turnutils_stunclient's reflexive address per server port. */
  readonly mapped: Record<number, string | null>;
  /** External ports the router's conntrack holds toward each server port (the truth to compare with). */
  readonly conntrack: Record<number, number[]>;
}

/** coturn's STUN client on a machine behind a router, against both STUN ports of the server. */
async function thirdPartyStunOn(key: string): Promise<ThirdPartyStun> {
  const m = machine(key);
  const mapped: Record<number, string | null> = {};
  const conntrack: Record<number, number[]> = {};
  for (const serverPort of [REGISTRAR_PORT, STUN_ALT_PORT]) {
    const run = await runStatus('timeout', ['5', 'ip', 'netns', 'exec', m.agent.namespace, 'turnutils_stunclient', '-p', String(serverPort), SERVER_IP]);
    mapped[serverPort] = /UDP reflexive addr: (\S+)/.exec(run.stdout)?.[1] ?? null;
    const out = m.router ? await lab.exec(lab.routerNs(m.router), 'conntrack', ['-L', '-p', 'udp']).catch(() => '') : '';
    conntrack[serverPort] = out
      .split('\n')
      .map((line) => new RegExp(`src=${m.address.replace(/\./g, '\\.')} dst=${SERVER_IP.replace(/\./g, '\\.')} sport=\\d+ dport=${serverPort} .*dport=(\\d+)`).exec(line)?.[1])
      .filter((port): port is string => port !== undefined)
      .map(Number);
  }
  return { mapped, conntrack };
}

// ---------------------------------------------------------------------------------------------
// What runs, and the results table

interface Pair {
  readonly host: string;
  readonly client: string;
  /** Expected punchthrough outcome (the relay is expected to work for every pair). */
  readonly punch: boolean;
  /** Datagrams each way through the relay. */
  readonly relayCount: number;
  readonly note?: string;
}

const PAIRS: readonly Pair[] = [
  { host: 'easy1a', client: 'easy2a', punch: true, relayCount: 1000 },
  { host: 'full1a', client: 'easy1a', punch: true, relayCount: 100 },
  { host: 'easy2a', client: 'full2a', punch: true, relayCount: 100 },
  { host: 'full1a', client: 'full2a', punch: true, relayCount: 100 },
  { host: 'restr1a', client: 'easy2a', punch: true, relayCount: 100 },
  { host: 'open', client: 'easy1a', punch: true, relayCount: 100 },
  { host: 'sym1a', client: 'sym2a', punch: false, relayCount: 1000 },
  { host: 'sym2a', client: 'easy1a', punch: false, relayCount: 1000 },
  { host: 'easy2a', client: 'sym1a', punch: false, relayCount: 1000 },
  { host: 'full2a', client: 'sym1a', punch: false, relayCount: 100 },
  { host: 'sym2a', client: 'full1a', punch: false, relayCount: 100, note: 'handshake passes (full cone lets the host in), then the client’s traffic hits the symmetric NAT' },
  { host: 'open', client: 'sym2a', punch: false, relayCount: 100 },
  { host: 'sym1a', client: 'open', punch: false, relayCount: 100, note: 'handshake passes (nothing filters the client), then the client’s traffic hits the symmetric NAT' },
];
const PUNCH_COUNT = 100;

/** Relay scenarios beyond one host and one client. */
const GROUPS = [
  { key: 'two clients behind one symmetric router → easy host', host: 'easy2a', clients: ['sym1a', 'sym1b'] },
  { key: 'two clients behind one easy router → full-cone host', host: 'full1a', clients: ['easy1a', 'easy1b'] },
  { key: 'host and client behind one symmetric router', host: 'sym2a', clients: ['sym2b'] },
  { key: 'host and client behind one easy router', host: 'easy2a', clients: ['easy2b'] },
] as const;
const REBIND = { host: 'full2a', client: 'easy3a', count: 300 };

const profileOf = (key: string) => (key === 'open' ? 'none' : (ROUTERS.find((r) => key.startsWith(r.name))?.profile ?? '?'));
const pairKey = (pair: { host: string; client: string }) => `${pair.host}↔${pair.client}`;
const pairLabel = (pair: { host: string; client: string }) => `${profileOf(pair.host)} host (${pair.host}) ↔ ${profileOf(pair.client)} client (${pair.client})`;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
const scenarios = new Map<string, Promise<Settled<unknown>>>();
const rows: Array<{ label: string; punch?: string; relay?: string }> = [];
const timings = { setup: 0, scenarios: 0 };

function launch<T>(key: string, run: () => Promise<T>): void {
  scenarios.set(
    key,
    run().then(
      (value): Settled<unknown> => ({ ok: true, value }),
      (error: unknown): Settled<unknown> => ({ ok: false, error }),
    ),
  );
}

async function outcome<T>(key: string): Promise<T> {
  const settled = await scenarios.get(key);
  if (!settled) throw new Error(`scenario ${key} did not run (lab setup failed?)`);
  if (!settled.ok) throw settled.error;
  return settled.value as T;
}

function cell(attempt: Attempt | undefined, error?: unknown): string {
  if (error !== undefined) return `error: ${error instanceof Error ? error.message.slice(0, 60) : String(error)}`;
  if (!attempt) return '—';
  if (!attempt.ok) return attempt.handshake ? 'no (handshake ok, traffic lost)' : 'no';
  return `yes, ${attempt.connectMs} ms (handshake ${attempt.handshakeMs} ms)`;
}

async function collectRows(): Promise<void> {
  const read = async <T extends Attempt>(key: string): Promise<{ attempt?: T; error?: unknown }> => {
    const settled = await scenarios.get(key);
    if (!settled) return {};
    return settled.ok ? { attempt: settled.value as T } : { error: settled.error };
  };
  for (const pair of PAIRS) {
    const punch = await read<PunchAttempt>(`punch ${pairKey(pair)}`);
    const relayed = await read<RelayAttempt>(`relay ${pairKey(pair)}`);
    rows.push({ label: pairLabel(pair), punch: cell(punch.attempt, punch.error), relay: cell(relayed.attempt, relayed.error) });
  }
  for (const group of GROUPS) {
    const relayed = await read<RelayAttempt>(`relay ${group.key}`);
    rows.push({ label: group.key, relay: cell(relayed.attempt, relayed.error) });
  }
  const rebind = await read<RebindAttempt>('rebind');
  rows.push({ label: `relay across a NAT rebinding (${REBIND.client} client, ${REBIND.host} host)`, relay: cell(rebind.attempt, rebind.error) });
}

function table(): string {
  const width = Math.max(...rows.map((row) => row.label.length), 10);
  const col = 36;
  const lines = [
    'NAT lab results: time to connect = client connect/connect-relay request → its handshake done (the handshake alone in',
    'parentheses); every scenario ran at once, so times include waiting for the CPU',
    `${'pair'.padEnd(width)}  ${'punchthrough'.padEnd(col)}  relay`,
    `${'-'.repeat(width)}  ${'-'.repeat(col)}  ${'-'.repeat(col)}`,
    ...rows.map((row) => `${row.label.padEnd(width)}  ${(row.punch ?? '—').padEnd(col)}  ${row.relay ?? '—'}`),
  ];
  return lines.join('\n');
}

/** Datagrams the kernel dropped (full socket buffers), per namespace: tells loss in the lab from loss in the server. */
async function udpErrors(): Promise<string> {
  const spaces = [lab.pub, ...new Set([...machines.values()].map((m) => m.agent.namespace))];
  const counts = await Promise.all(
    spaces.map(async (ns) => {
      const snmp = await lab.exec(ns, 'cat', ['/proc/net/snmp']).catch(() => '');
      const [header, values] = snmp.split('\n').filter((line) => line.startsWith('Udp:'));
      if (!header || !values) return '';
      const names = header.split(/\s+/);
      const numbers = values.split(/\s+/);
      const errors = ['InErrors', 'RcvbufErrors', 'SndbufErrors']
        .map((name) => [name, Number(numbers[names.indexOf(name)] ?? 0)] as const)
        .filter(([, n]) => n > 0);
      return errors.length ? `${ns.slice(lab.prefix.length)} ${errors.map(([name, n]) => `${name}=${n}`).join(' ')}` : '';
    }),
  );
  return counts.filter((c) => c !== '').join('; ');
}

// ---------------------------------------------------------------------------------------------
// The suite

const capability = probeCapability();
const mustRun = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.getuid?.() === 0;

if (!capability.ok) {
  if (mustRun) {
    describe('NAT lab', () => {
      it('can build network namespaces with NAT (required on CI as root)', () => {
        throw new Error(`NAT lab cannot run: ${capability.reason}`);
      });
    });
  } else {
    console.warn(`NAT lab skipped: ${capability.reason}`);
    describe.skip(`NAT lab (skipped: ${capability.reason})`, () => {
      it('needs root, iproute2, iptables and conntrack', () => undefined);
    });
  }
} else {
  describe('NAT lab', () => {
    const cleanupOnSignal = (signal: NodeJS.Signals) => {
      lab.teardownSync();
      process.kill(process.pid, signal);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

    beforeAll(async () => {
      const setupStarted = Date.now();
      for (const signal of signals) process.once(signal, cleanupOnSignal);
      process.once('exit', () => lab.teardownSync());
      await Promise.all([ensureBuilt(), removeStaleNamespaces()]);

      await lab.buildPublic();
      // The server starts while the homes are built.
      const server = lab.startServer({
        NORAY_LOGLEVEL: 'info',
        NORAY_SOCKET_HOST: SERVER_IP,
        NORAY_SOCKET_PORT: String(CONTROL_PORT),
        NORAY_UDP_HOST: SERVER_IP,
        NORAY_UDP_REGISTRAR_PORT: String(REGISTRAR_PORT),
        NORAY_STUN_ALT_PORT: String(STUN_ALT_PORT),
        NORAY_UDP_RELAY_PORTS: RELAY_PORTS,
        NORAY_UDP_RELAY_MAX_INDIVIDUAL_TRAFFIC: RELAY_LIMIT,
        NORAY_HTTP_HOST: SERVER_IP,
        NORAY_HTTP_PORT: String(HTTP_PORT),
        // Production setting: TEST-NET addresses are public, a LAN address would be refused.
        NORAY_DENY_PRIVATE_PEERS: 'true',
        NORAY_LOBBY_HTTP_PORT: 'off',
        NORAY_LOBBY_UDP_PORT: 'off',
        NORAY_WSRELAY_PORT: 'off',
        NORAY_TCPRELAY_PORT: 'off',
      });
      const agents = await Promise.all([
        ...ROUTERS.map(async (router, index) => ({ router, agent: await lab.buildRouter(router, index) })),
        lab.buildOpen(OPEN, ROUTERS.length).then((agent) => ({ router: null, agent })),
      ]);
      for (const { router, agent } of agents) {
        agent.addresses.forEach((address, i) => {
          const key = router ? `${router.name}${'abcdefgh'[i]}` : OPEN.name;
          machines.set(key, { key, agent, address, profile: router?.profile ?? 'none', publicIp: router?.wan ?? address, router });
        });
      }
      await Promise.all([server.ready(), ...agents.map(({ agent }) => agent.ready())]);
      timings.setup = Date.now() - setupStarted;
      const scenariosStarted = Date.now();

      for (const pair of PAIRS) {
        launch(`punch ${pairKey(pair)}`, () => punchthrough(pair.host, pair.client, PUNCH_COUNT));
        launch(`relay ${pairKey(pair)}`, () => relay(pair.host, [pair.client], pair.relayCount));
      }
      for (const group of GROUPS) launch(`relay ${group.key}`, () => relay(group.host, group.clients, 1000));
      launch('rebind', () => rebinding(REBIND.host, REBIND.client, REBIND.count));
      for (const key of DOCTOR_MACHINES) launch(`doctor ${key}`, () => doctorOn(key));
      if (stunClientMissing() === null) for (const key of ['easy2a', 'sym2a']) launch(`stun ${key}`, () => thirdPartyStunOn(key));
      void Promise.all(scenarios.values()).then(() => (timings.scenarios = Date.now() - scenariosStarted));
    }, 180_000);

    afterAll(async () => {
      try {
        if (scenarios.size > 0) {
          await collectRows();
          const open = machines.get(OPEN.name);
          const metrics = await open?.agent.call('fetch', { url: `http://${SERVER_IP}:${HTTP_PORT}/metrics` }).catch(() => null);
          const drops = (metrics?.body ?? '')
            .split('\n')
            .filter((line) => line.startsWith('noray_relay_drop_count{') && !line.endsWith(' 0'))
            .join('\n');
          const kernel = await udpErrors();
          const doctors = await Promise.all(
            DOCTOR_MACHINES.map(async (key) => {
              const settled = await scenarios.get(`doctor ${key}`);
              return settled?.ok ? `$ noray doctor on ${key} (${profileOf(key)})\n${(settled.value as DoctorRun).text}` : `doctor on ${key}: ${settled ? String(settled.error) : 'not run'}`;
            }),
          );
          console.log(`${doctors.join('\n')}`);
          console.log(
            `${table()}\n\nrelay drops on the server: ${drops || 'none'}\nUDP receive errors in the kernel: ${kernel || 'none'}\n` +
              `lab built and every process ready in ${timings.setup} ms, all scenarios done in ${timings.scenarios} ms`,
          );
        }
      } finally {
        await lab.teardown();
        for (const signal of signals) process.off(signal, cleanupOnSignal);
      }
    }, 60_000);

    describe('1. punchthrough between cone NATs, traffic straight from the peer’s router', () => {
      it.each(PAIRS.filter((pair) => pair.punch).map((pair) => [pairLabel(pair), pair] as const))('%s', async (_label, pair) => {
        const attempt = await outcome<PunchAttempt>(`punch ${pairKey(pair)}`);
        expect(attempt.handshake, attempt.detail).toBe(true);
        expect(attempt.toHost).toBe(`${attempt.host.machine.publicIp}:${attempt.toHost.split(':')[1]}`);
        expect(attempt.toClient).toBe(`${attempt.client.machine.publicIp}:${attempt.toClient.split(':')[1]}`);
        expect(attempt.flows).toHaveLength(2);
        for (const flow of attempt.flows) {
          // Every datagram from the peer's router WAN address (the connect line), none from elsewhere.
          expect(flow.sources, describeFlow(flow)).toEqual({ [flow.seenFrom]: PUNCH_COUNT });
          expect(intact(flow), describeFlow(flow)).toBe(true);
        }
        expect(attempt.ok).toBe(true);
      }, 60_000);
    });

    describe('2. punchthrough fails where netfox cannot get through a symmetric NAT', () => {
      it('symmetric host ↔ symmetric client: the handshake times out (the NATs are real)', async () => {
        const attempt = await outcome<PunchAttempt>(`punch ${pairKey({ host: 'sym1a', client: 'sym2a' })}`);
        expect(attempt.handshake, attempt.detail).toBe(false);
        expect(attempt.ok).toBe(false);
        // The host's NAT gave its one local port a different external port toward the registrar
        // than toward the client: that is what defeats punchthrough.
        expect(attempt.hostMappings.length, `host mappings ${attempt.hostMappings.join(',')}`).toBeGreaterThanOrEqual(2);
        expect(attempt.hostMappings).toContain(Number(attempt.toHost.split(':')[1]));
      }, 60_000);

      it.each(PAIRS.filter((pair) => !pair.punch && pairKey(pair) !== 'sym1a↔sym2a').map((pair) => [pairLabel(pair), pair] as const))(
        '%s: no punchthrough',
        async (_label, pair) => {
          const attempt = await outcome<PunchAttempt>(`punch ${pairKey(pair)}`);
          expect(attempt.ok, attempt.detail).toBe(false);
        },
        60_000,
      );
    });

    describe('3. the relay works whatever the NAT (1000 datagrams of 1..1200 B each way, intact and in order)', () => {
      const relayCheck = (attempt: RelayAttempt, count: number) => {
        expect(attempt.handshake, attempt.detail).toBe(true);
        for (const line of attempt.lines) {
          expect(line.toHost).toMatch(new RegExp(`^${SERVER_IP.replace(/\./g, '\\.')}:\\d+$`));
          expect(line.toClient).toMatch(new RegExp(`^${SERVER_IP.replace(/\./g, '\\.')}:\\d+$`));
        }
        for (const flow of attempt.flows) {
          expect(flow.count).toBe(count);
          expect(intact(flow), describeFlow(flow)).toBe(true);
        }
        expect(attempt.ok, attempt.detail).toBe(true);
      };

      it.each(PAIRS.map((pair) => [pairLabel(pair), pair] as const))('%s', async (_label, pair) => {
        relayCheck(await outcome<RelayAttempt>(`relay ${pairKey(pair)}`), pair.relayCount);
      }, 60_000);

      it.each(GROUPS.map((group) => [group.key, group] as const))('%s', async (_label, group) => {
        const attempt = await outcome<RelayAttempt>(`relay ${group.key}`);
        relayCheck(attempt, 1000);
        expect(attempt.flows).toHaveLength(2 * group.clients.length);
        // The host sees each client as its own relay address.
        expect(new Set(attempt.lines.map((line) => line.toClient)).size).toBe(group.clients.length);
      }, 60_000);
    });

    it('4. a NAT rebinding mid-session is survived through netfox’s re-registration (relayed pair)', async () => {
      const attempt = await outcome<RebindAttempt>('rebind');
      expect(attempt.before.every(intact), attempt.before.map(describeFlow).join('; ')).toBe(true);
      expect(attempt.reregistered).toBe('OK');
      expect(attempt.newLocalPort).not.toBe(attempt.oldLocalPort);
      // The NAT really moved: before, the local port kept its number; after, it maps into the new range.
      expect(attempt.oldMapping).toEqual([attempt.oldLocalPort]);
      expect(attempt.newMapping.length).toBeGreaterThan(0);
      for (const port of attempt.newMapping) {
        expect(port).toBeGreaterThanOrEqual(REBIND_PORTS[0]);
        expect(port).toBeLessThanOrEqual(REBIND_PORTS[1]);
      }
      expect(attempt.handshake, attempt.detail).toBe(true);
      for (const flow of attempt.flows) expect(intact(flow), describeFlow(flow)).toBe(true);
      expect(attempt.ok, attempt.detail).toBe(true);
    }, 60_000);

    describe('6. noray doctor names the cause in each lab setup', () => {
      const verdict = (run: DoctorRun) => run.report.verdict.join(' ');

      it('easy NAT: no problem, one mapping for both server ports, exit 0', async () => {
        const run = await outcome<DoctorRun>('doctor easy1a');
        expect(run.code, run.text).toBe(0);
        expect(run.report.mapping).toBe('endpoint-independent');
        expect(run.report.seen.fromRegistrarPort).toMatch(/^203\.0\.113\.11:\d+$/);
        expect(run.report.seen.fromAltPort).toBe(run.report.seen.fromRegistrarPort);
        expect(verdict(run)).toContain('No problem found');
      }, 60_000);

      it('symmetric NAT: two mappings, says punchthrough will fail and the relay is needed, exit 3', async () => {
        const run = await outcome<DoctorRun>('doctor sym1a');
        expect(run.code, run.text).toBe(3);
        expect(run.report.mapping).toBe('endpoint-dependent');
        const { fromRegistrarPort, fromAltPort } = run.report.seen;
        expect(fromRegistrarPort).toMatch(/^203\.0\.113\.31:\d+$/);
        expect(fromAltPort).toMatch(/^203\.0\.113\.31:\d+$/);
        expect(fromAltPort).not.toBe(fromRegistrarPort);
        expect(verdict(run)).toContain('punchthrough (connect) from here will fail');
        expect(verdict(run)).toContain('need the relay');
        expect(verdict(run)).toContain('The relay works');
      }, 60_000);

      it('a firewall dropping the relay range: names the range, says to open UDP, exit 1', async () => {
        const run = await outcome<DoctorRun>('doctor fw1a');
        expect(run.code, run.text).toBe(1);
        expect(run.report.checks.find((c) => c.id === 'registrar')?.status).toBe('ok');
        expect(verdict(run)).toContain(`Relay ports ${RELAY_PORTS} look blocked by a firewall`);
        expect(verdict(run)).toContain(`open UDP ${RELAY_PORTS}`);
      }, 60_000);

      it('no NAT: no problem, exit 0', async () => {
        const run = await outcome<DoctorRun>('doctor open');
        expect(run.code, run.text).toBe(0);
        expect(run.report.mapping).toBe('no-nat');
      }, 60_000);
    });

    describe('7. a STUN client we did not write (coturn turnutils_stunclient) gets the NAT-mapped address', () => {
      const missing = stunClientMissing();
      const cases = [
        ['easy2a', 'easy', '203.0.113.12'],
        ['sym2a', 'symmetric', '203.0.113.32'],
      ] as const;
      const title = '%s (%s NAT): the reflexive address is the router WAN address and the port its conntrack mapping';
      if (missing !== null && !onCi) {
        it.skip(`${title} (skipped: ${missing})`, () => undefined);
        return;
      }
      it.each(cases)(title, async (key, _profile, wan) => {
        if (missing !== null) throw new Error(`${missing}: required on CI`);
        const result = await outcome<ThirdPartyStun>(`stun ${key}`);
        for (const serverPort of [REGISTRAR_PORT, STUN_ALT_PORT]) {
          const mapped = result.mapped[serverPort];
          expect(mapped, `port ${serverPort}`).toMatch(new RegExp(`^${wan.replace(/\./g, '\\.')}:\\d+$`));
          expect(result.conntrack[serverPort], `conntrack toward ${serverPort}`).toContain(Number(mapped?.split(':')[1]));
        }
      }, 60_000);
    });

    it('5. connect lines carry router WAN addresses, never LAN ones', async () => {
      let checked = 0;
      for (const pair of PAIRS) {
        const attempt = await outcome<PunchAttempt>(`punch ${pairKey(pair)}`);
        for (const [line, player] of [
          [attempt.toHost, attempt.host],
          [attempt.toClient, attempt.client],
        ] as const) {
          const match = ipPort.exec(line);
          expect(match, `connect ${line}`).not.toBeNull();
          const ip = match?.[1] ?? '';
          expect(ip).toBe(player.machine.publicIp);
          expect(LAN_PREFIXES.some((prefix) => ip.startsWith(prefix)), `connect ${line}`).toBe(false);
          // ... while the player itself only knows its LAN address (it really is behind the NAT).
          if (player.machine.router) expect(player.tcpLocal.startsWith(`${player.machine.router.lan}.`), player.tcpLocal).toBe(true);
          checked++;
        }
      }
      expect(checked).toBe(2 * PAIRS.length);
    }, 60_000);
  });
}
