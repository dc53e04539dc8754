/**
 * `npm run bench:dashboard` (`-- --quick` for a ~20 s run): what the ops dashboard costs the
 * server. Starts the real bin (`node dist/bin/noray.js`) with 1000 registered noray hosts and 300
 * tcprelay clients, then measures the server's CPU (from /proc, user+system) with no page open,
 * one page, and four pages searching for different text, in alternating rounds. A "page" here is
 * the page's stream (`GET /dashboard/stream`, read as it arrives): the server's cost of a page
 * is building and sending its snapshots; drawing it is the browser's. Prints a table and writes
 * bench/results/dashboard.json. Every child is killed on any way out (deadline 120 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { cleanEnv, QUIET_PORTS } from '../test/helpers/spawned.js';
import { BENCH_DIR, ROOT_DIR, cpuPercent, guardRun, sampleProc } from './lib/child.js';

const quick = process.argv.includes('--quick');
const HOSTS = quick ? 300 : 1000;
const TCPRELAY_CLIENTS = quick ? 100 : 300;
const PHASE_MS = quick ? 2000 : 5000;
const ROUNDS = quick ? 1 : 3;
const BIN = join(ROOT_DIR, 'dist', 'bin', 'noray.js');

let server: ChildProcess | null = null;
const sockets: Socket[] = [];
guardRun('bench:dashboard', 120_000, () => server?.kill('SIGKILL'));

interface Ports {
  readonly ops: number;
  readonly control: number;
  readonly tcprelay: number;
}

async function startServer(): Promise<Ports> {
  const child = spawn(process.execPath, [BIN], {
    env: cleanEnv({
      ...QUIET_PORTS,
      NORAY_LOGLEVEL: 'info',
      NORAY_TCPRELAY_PORT: '0',
      NORAY_OPS_TOKEN: 'bench-dashboard-token-0123456789',
      NORAY_MAX_CONNECTIONS: '100000',
      NORAY_MAX_CONNECTIONS_PER_IP: '100000',
      NORAY_MAX_SESSIONS: '100000',
    }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  server = child;
  return new Promise((resolve, reject) => {
    let text = '';
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      text += chunk;
      for (const line of text.split('\n')) {
        if (!line.includes('"noray ready"')) continue;
        const ports = (JSON.parse(line) as { ports: Record<string, Record<string, number>> }).ports;
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        resolve({ ops: ports.ops?.http ?? 0, control: ports.noray?.control ?? 0, tcprelay: ports.tcprelay?.tcp ?? 0 });
        return;
      }
    });
  });
}

const AUTH = { authorization: 'Bearer bench-dashboard-token-0123456789' };

/** Opens a TCP connection, writes `hello`, and resolves once `until` matches what came back. */
function client(port: number, hello: Buffer | string, until: (text: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    sockets.push(socket);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (until(text)) resolve();
    });
    socket.once('error', reject);
    socket.write(hello);
  });
}

function roccoInit(source: string): Buffer {
  const body = Buffer.from(JSON.stringify({ payloadType: 'INIT', source }));
  const frame = Buffer.alloc(4 + body.length);
  frame.writeUInt32BE(body.length);
  body.copy(frame, 4);
  return frame;
}

interface Page {
  close(): void;
  readonly snapshots: () => number;
}

async function openPage(ops: number, search: string): Promise<Page> {
  const abort = new AbortController();
  const response = await fetch(`http://127.0.0.1:${ops}/dashboard/stream?search=${encodeURIComponent(search)}`, { headers: AUTH, signal: abort.signal });
  const reader = response.body?.getReader();
  if (!response.ok || !reader) throw new Error(`stream answered ${response.status}`);
  let snapshots = 0;
  const decoder = new TextDecoder();
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        snapshots += decoder.decode(value, { stream: true }).split('event: snapshot').length - 1;
      }
    } catch {
      // aborted
    }
  })();
  return { close: () => abort.abort(), snapshots: () => snapshots };
}

interface Phase {
  readonly pages: number;
  readonly cpuPercent: number;
  readonly snapshotsPerSecond: number;
}

async function measure(pid: number, ops: number, searches: readonly string[]): Promise<Phase> {
  const pages = await Promise.all(searches.map((search) => openPage(ops, search)));
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const before = sampleProc(pid);
  const counted = pages.reduce((sum, page) => sum + page.snapshots(), 0);
  await new Promise((resolve) => setTimeout(resolve, PHASE_MS));
  const after = sampleProc(pid);
  const snapshots = pages.reduce((sum, page) => sum + page.snapshots(), 0) - counted;
  for (const page of pages) page.close();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { pages: pages.length, cpuPercent: cpuPercent(before, after) ?? Number.NaN, snapshotsPerSecond: snapshots / (PHASE_MS / 1000) };
}

async function main(): Promise<void> {
  const ports = await startServer();
  const pid = server?.pid;
  if (pid === undefined) throw new Error('no server pid');
  for (let i = 0; i < HOSTS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, HOSTS - i) }, (_, j) => client(ports.control, `register-host host-${i + j}\n`, (text) => text.includes('set-pid'))),
    );
  }
  for (let i = 0; i < TCPRELAY_CLIENTS; i++) await client(ports.tcprelay, roccoInit(`rocco-${i}`), (text) => text.includes('"INIT"'));
  process.stderr.write(`${HOSTS} hosts and ${TCPRELAY_CLIENTS} tcprelay clients registered; measuring ${ROUNDS} round(s) of ${PHASE_MS / 1000} s phases\n`);

  const scenarios: ReadonlyArray<{ name: string; searches: readonly string[] }> = [
    { name: 'no page open', searches: [] },
    { name: '1 page', searches: [''] },
    { name: '4 pages, 4 searches', searches: ['', 'host-1', 'rocco', 'host-99'] },
  ];
  const results = new Map<string, Phase[]>(scenarios.map((scenario) => [scenario.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const scenario of scenarios) results.get(scenario.name)?.push(await measure(pid, ports.ops, scenario.searches));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  const rows = scenarios.map((scenario) => {
    const phases = results.get(scenario.name) ?? [];
    return {
      scenario: scenario.name,
      pages: scenario.searches.length,
      cpuPercent: Number(median(phases.map((phase) => phase.cpuPercent)).toFixed(2)),
      snapshotsPerSecond: Number(median(phases.map((phase) => phase.snapshotsPerSecond)).toFixed(2)),
    };
  });
  const idle = rows[0]?.cpuPercent ?? 0;
  console.log(`\nDashboard cost: server CPU (% of one core, median of ${ROUNDS}), ${HOSTS} hosts + ${TCPRELAY_CLIENTS} tcprelay clients listed\n`);
  console.log('| scenario | pages | server CPU | over no page | snapshots/s received |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) {
    console.log(`| ${row.scenario} | ${row.pages} | ${row.cpuPercent.toFixed(2)} % | ${(row.cpuPercent - idle >= 0 ? '+' : '') + (row.cpuPercent - idle).toFixed(2)} % | ${row.snapshotsPerSecond.toFixed(1)} |`);
  }
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  writeFileSync(join(BENCH_DIR, 'results', 'dashboard.json'), `${JSON.stringify({ quick, hosts: HOSTS, tcprelayClients: TCPRELAY_CLIENTS, phaseMs: PHASE_MS, rounds: ROUNDS, rows }, null, 2)}\n`);
}

main()
  .then(() => {
    for (const socket of sockets) socket.destroy();
    server?.kill('SIGTERM');
    process.exit(0);
  })
  .catch((error: unknown) => {
    process.stderr.write(`bench:dashboard failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    server?.kill('SIGKILL');
    process.exit(1);
  });
