/**
 * The well-behaved side of the abuse benchmark (a child process on its own event loop, driven over
 * IPC). From CLIENT_IP it keeps, for the whole run:
 *  - a noray control connection sending `echo N` 50 times a second (round trip per line);
 *  - a netfox-like host and client, registered through the control port and the UDP registrar and
 *    introduced with `connect-relay`, ping-ponging 64-byte datagrams through the relay 100 times a
 *    second (the client stamps, the host echoes);
 *  - probes of the other fronts every 500 ms (ops /health, lobby GET /lobbies, a wsrelay upgrade, a
 *    tcprelay INIT), each a fresh connection like a newly arriving player.
 * `window` collects what was sent during a time window and counts lost replies and failures.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WsPeer } from '../../test/clients/carparty.js';
import { raw } from '../../test/clients/rocco.js';
import { serve } from '../lib/rpc.js';
import {
  CLIENT_IP,
  errorText,
  httpRequest,
  registerUdp,
  SERVER_HOST,
  sleep,
  summarize,
  tcpConnect,
  udpSocket,
  withTimeout,
  type LatencySummary,
  type Ports,
} from './common.js';
import { LineClient } from './line-client.js';

const ECHO_INTERVAL_MS = 20; // 50/s
const PING_INTERVAL_MS = 10; // 100/s
const PROBE_INTERVAL_MS = 500;

interface Sent {
  at: number;
  rtt: number | null;
}

export interface WindowResult {
  echo: LatencySummary & { sent: number; lost: number };
  relay: LatencySummary & { sent: number; lost: number };
  probes: Record<string, { ok: number; failed: number; p99: number; firstError: string | null }>;
  /** Disconnects and failures of the measuring clients during the window. */
  failures: Record<string, number>;
  /** `connect` notifications the measured host received (attack 5 aims at it). */
  hostNotifications: number;
  /** The measurer's own event-loop delay (ms): when high, the measurer was starved, not only the server. */
  measurerLag: { p99: number; max: number };
}

let ports: Ports | null = null;
const echoes = new Map<number, Sent>();
const pings = new Map<number, Sent>();
let echoSeq = 0;
let pingSeq = 0;
let echoClient: LineClient | null = null;
let host: LineClient | null = null;
let client: LineClient | null = null;
let hostUdp: UdpSocket | null = null;
let clientUdp: UdpSocket | null = null;
let toHostPort = 0;
let toClientPort = 0;
let hostNotifications = 0;
const failures = new Map<string, number>();
interface ProbeSample {
  at: number;
  ms: number;
  error: string | null;
}
const probeSamples = new Map<string, ProbeSample[]>();
const timers: NodeJS.Timeout[] = [];
let stopping = false;

function fail(kind: string): void {
  failures.set(kind, (failures.get(kind) ?? 0) + 1);
}

async function connectEcho(): Promise<void> {
  if (!ports || stopping) return;
  const connection = await LineClient.connect(ports.control, CLIENT_IP);
  // Like every Godot client: register first (an unregistered connection meets the login timeout).
  await connection.registerHost();
  connection.onLine = (command, data) => {
    if (command !== 'echo') {
      fail(`echo_unexpected_${command}`);
      return;
    }
    const sent = echoes.get(Number(data));
    if (sent && sent.rtt === null) sent.rtt = performance.now() - sent.at;
  };
  connection.onClose = () => {
    if (stopping) return;
    fail('echo_disconnected');
    echoClient = null;
    setTimeout(() => connectEcho().catch(() => fail('echo_reconnect_failed')), 100);
  };
  echoClient = connection;
}

async function setupRelay(p: Ports): Promise<void> {
  host = await LineClient.connect(p.control, CLIENT_IP);
  client = await LineClient.connect(p.control, CLIENT_IP);
  await Promise.all([host.registerHost(), client.registerHost()]);
  hostUdp = await udpSocket(CLIENT_IP);
  clientUdp = await udpSocket(CLIENT_IP);
  const answers = await Promise.all([registerUdp(hostUdp, host.pid, p.registrar), registerUdp(clientUdp, client.pid, p.registrar)]);
  if (answers.some((answer) => answer !== 'OK')) throw new Error(`registrar answered ${answers.join(' / ')}`);
  const hostSide = host.next('connect-relay', 10_000);
  client.send('connect-relay', host.oid);
  const [toHost, toClient] = await Promise.all([client.next('connect-relay', 10_000), hostSide]);
  toHostPort = Number(toHost);
  toClientPort = Number(toClient);
  if (!(toHostPort > 0 && toClientPort > 0)) throw new Error(`connect-relay answered ${toHost} / ${toClient}`);
  host.onLine = (command) => {
    if (command === 'connect' || command === 'connect-relay') hostNotifications++;
    else if (command === 'error') fail('host_error_line');
  };
  client.onLine = (command) => {
    if (command === 'error') fail('relay_client_error_line');
  };
  host.onClose = () => {
    if (!stopping) fail('relay_host_disconnected');
  };
  client.onClose = () => {
    if (!stopping) fail('relay_client_disconnected');
  };
  // The host echoes every ping back through its own relay port.
  const hostSocket = hostUdp;
  hostSocket.on('message', (message) => hostSocket.send(message, toClientPort, SERVER_HOST));
  clientUdp.on('message', (message) => {
    if (message.length < 8) return;
    const sent = pings.get(message.readUInt32BE(0));
    if (sent && sent.rtt === null) sent.rtt = performance.now() - sent.at;
  });
  // A first exchange must get through before measuring starts.
  const deadline = Date.now() + 5000;
  while (![...pings.values()].some((sent) => sent.rtt !== null)) {
    if (Date.now() > deadline) throw new Error('no ping came back through the relay');
    sendPing();
    await sleep(50);
  }
}

const pingBuffer = Buffer.alloc(64);
function sendPing(): void {
  if (!clientUdp) return;
  const seq = ++pingSeq;
  pingBuffer.writeUInt32BE(seq, 0);
  pings.set(seq, { at: performance.now(), rtt: null });
  clientUdp.send(pingBuffer, toHostPort, SERVER_HOST);
}

function sendEcho(): void {
  if (!echoClient || echoClient.closed) return;
  const seq = ++echoSeq;
  echoes.set(seq, { at: performance.now(), rtt: null });
  echoClient.send('echo', String(seq));
}

async function timed(name: string, probe: () => Promise<void>): Promise<void> {
  const at = performance.now();
  let error: string | null = null;
  try {
    await probe();
  } catch (e) {
    error = errorText(e);
  }
  const list = probeSamples.get(name) ?? [];
  list.push({ at, ms: performance.now() - at, error });
  probeSamples.set(name, list);
}

function probeOnce(p: Ports): void {
  void timed('ops_health', async () => {
    const answer = await httpRequest(p.ops, '/health', { localAddress: CLIENT_IP, timeoutMs: 3000 });
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
  });
  void timed('lobby_list', async () => {
    const answer = await httpRequest(p.lobbyHttp, '/lobbies?limit=1', { localAddress: CLIENT_IP, timeoutMs: 3000 });
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
  });
  void timed('wsrelay_upgrade', async () => {
    const peer = await withTimeout(WsPeer.open(p.wsrelay, '/', { localAddress: CLIENT_IP }), 3000, 'upgrade');
    peer.ws.terminate();
  });
  void timed('tcprelay_init', async () => {
    const socket = await tcpConnect(p.tcprelay, CLIENT_IP, 3000);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no INIT reply')), 3000);
        socket.once('data', (chunk: Buffer) => {
          clearTimeout(timer);
          if (chunk.toString('utf8').includes('"INIT"')) resolve();
          else reject(new Error(`answered ${chunk.toString('utf8', 4, 80)}`));
        });
        socket.once('close', () => reject(new Error('closed')));
        socket.write(raw({ payloadType: 'INIT' }));
      });
    } finally {
      socket.destroy();
    }
  });
}

function collect(samples: Map<number, Sent>, from: number, to: number): LatencySummary & { sent: number; lost: number } {
  const rtts: number[] = [];
  let sent = 0;
  let lost = 0;
  for (const [seq, sample] of samples) {
    if (sample.at < from) {
      samples.delete(seq);
      continue;
    }
    if (sample.at >= to) continue;
    sent++;
    if (sample.rtt === null) lost++;
    else rtts.push(sample.rtt);
    samples.delete(seq);
  }
  return { ...summarize(rtts), sent, lost };
}

serve({
  setup: async (params: { ports: Ports }) => {
    ports = params.ports;
    await connectEcho();
    await setupRelay(params.ports);
    timers.push(setInterval(sendEcho, ECHO_INTERVAL_MS));
    timers.push(setInterval(sendPing, PING_INTERVAL_MS));
    const p = params.ports;
    timers.push(setInterval(() => probeOnce(p), PROBE_INTERVAL_MS));
    return { hostOid: host?.oid ?? '' };
  },
  window: async (params: { durationMs: number; graceMs: number }): Promise<WindowResult> => {
    failures.clear();
    hostNotifications = 0;
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const from = performance.now();
    await sleep(params.durationMs);
    const to = performance.now();
    lag.disable();
    // Replies to what was sent in the window may still be on their way: wait for them, up to graceMs.
    const pending = (samples: Map<number, Sent>) => [...samples.values()].some((sample) => sample.at >= from && sample.at < to && sample.rtt === null);
    for (const until = performance.now() + params.graceMs; performance.now() < until && (pending(echoes) || pending(pings)); ) await sleep(20);
    const probes: WindowResult['probes'] = {};
    for (const [name, list] of probeSamples) {
      const inWindow = list.filter((sample) => sample.at >= from && sample.at < to);
      probeSamples.set(name, list.filter((sample) => sample.at >= to));
      const failed = inWindow.filter((sample) => sample.error !== null);
      probes[name] = {
        ok: inWindow.length - failed.length,
        failed: failed.length,
        p99: summarize(inWindow.map((sample) => sample.ms)).p99,
        firstError: failed[0]?.error ?? null,
      };
    }
    return {
      echo: collect(echoes, from, to),
      relay: collect(pings, from, to),
      probes,
      failures: Object.fromEntries(failures),
      hostNotifications,
      measurerLag: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
    };
  },
  stop: () => {
    stopping = true;
    for (const timer of timers) clearInterval(timer);
    for (const connection of [echoClient, host, client]) connection?.close();
    hostUdp?.close();
    clientUdp?.close();
    return null;
  },
});
