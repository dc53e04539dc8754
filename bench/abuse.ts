/**
 * `npm run bench:abuse [-- --quick] [--only relay-monopoly,silent] [--profile]`: how much one abusive source
 * IP slows down well-behaved players on a default-configured server.
 *
 * Starts the real server (dist/, default limits, every front on, pinned to cpu 0) and a measuring
 * process (cpu 1, source 127.0.0.2) that keeps a noray `echo` round trip at 50/s, a relayed UDP
 * ping-pong at 100/s and probes of the other fronts going. Then, for a quiet baseline, each attack
 * (its own process, source 127.0.0.1, cpu 1 at a lower priority than the measurer) and a quiet
 * phase after, it measures for a few seconds and reads `noray_limit_rejections_total` from the ops
 * /metrics before and after. Prints a table, writes bench/results/abuse.json. A row PASSes when
 * both p99s are within 2x of quiet and under 20 ms and no well-behaved client was refused; the
 * exit code is 0 whatever the verdicts, 1 only when the harness itself broke.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, setPriority } from 'node:os';
import { parseSamples } from '../test/helpers/metrics.js';
import { ATTACKS } from './abuse/attacks/index.js';
import { errorText, httpRequest, portsOf, RUNNER_IP, sleep, withTimeout, type AttackStats, type FrontPorts, type Ports } from './abuse/common.js';
import type { WindowResult } from './abuse/measure.js';
import { BENCH_DIR, Child, cpuCount, cpuPercent, guardRun, killAll, sampleProc } from './lib/child.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const onlyIndex = args.indexOf('--only');
const only = onlyIndex >= 0 ? new Set((args[onlyIndex + 1] ?? '').split(',')) : null;
const started = performance.now();
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);

const WINDOW_MS = quick ? 2000 : 5000;
/** How long a reply may take before it counts as lost (the wait ends as soon as all are in). */
const GRACE_MS = quick ? 1500 : 2000;
const WARMUP_MS = quick ? 200 : 500;
const SETTLE_MS = quick ? 200 : 1000;
const WARMUP_WINDOW_MS = quick ? 500 : 2000;
/** Setup (opening hundreds of connections) and teardown of one attack may take this long at most. */
const PHASE_SLACK_MS = 30_000;
const P99_LIMIT_MS = 20;
const P99_RATIO_LIMIT = 2;

const twoCores = cpuCount() >= 2;
const SERVER_CPU = twoCores ? '0' : undefined;
const LOAD_CPU = twoCores ? '1' : undefined;
/**
 * Priorities (best effort; negative needs root): the server and the measurer above other work on
 * a shared machine, the attackers below the measurer, so on the shared load core it never waits
 * for them.
 */
const SERVER_NICE = -10;
const MEASURER_NICE = -10;
const ATTACKER_NICE = 0;

/** Default limits everywhere: only where the fronts listen is set (loopback, ephemeral ports). */
const SERVER_ENV: Record<string, string> = {
  NORAY_LOGLEVEL: 'warn',
  NORAY_SOCKET_HOST: '127.0.0.1',
  NORAY_SOCKET_PORT: '0',
  NORAY_UDP_HOST: '127.0.0.1',
  NORAY_UDP_REGISTRAR_PORT: '0',
  // As many relay ports as the default range (49152-51200), outside the ephemeral range.
  NORAY_UDP_RELAY_PORTS: '26000+2048',
  NORAY_WSRELAY_HOST: '127.0.0.1',
  NORAY_WSRELAY_PORT: '0',
  NORAY_TCPRELAY_HOST: '127.0.0.1',
  NORAY_TCPRELAY_PORT: '0',
  NORAY_LOBBY_HOST: '127.0.0.1',
  NORAY_LOBBY_HTTP_PORT: '0',
  NORAY_LOBBY_UDP_PORT: '0',
  NORAY_HTTP_HOST: '127.0.0.1',
  NORAY_HTTP_PORT: '0',
};

/** The attack counters worth a place in the table (all of them are in the JSON and the details). */
const HEADLINES: Record<string, readonly string[]> = {
  'registrar-garbage': ['garbage_sent', 'replies_to_garbage', 'fake_pids_sent', 'replies_to_fake_pids'],
  'relay-monopoly': ['relays_granted', 'distinct_relay_ports'],
  'wsrelay-big': ['messages_sent', 'messages_relayed', 'phone_logins'],
  'lobby-flood': ['lobbies_created', 'list_http_200', 'list_http_429'],
  'connect-flood': ['connect_sent', 'connect_answered'],
  'tcprelay-big': ['frames_sent', 'senders_cut', 'receiver_bytes'],
  silent: ['wsrelay_open', 'lobby_open', 'ops_open', 'wsrelay_closed_by_server', 'lobby_closed_by_server', 'ops_closed_by_server', 'held'],
  guessing: ['ws_guesses', 'tcp_frames_sent', 'tcp_error_answers', 'tcp_senders_closed_by_server'],
};

interface Row {
  phase: string;
  title: string;
  window: WindowResult | null;
  serverCpu: number | null;
  /** CPU used by everything else on the machine during the window (percent of one core): noise. */
  othersCpu: number | null;
  /** Deltas of noray_limit_rejections_total{front,reason} over the phase (attack setup included). */
  rejections: Record<string, number>;
  attack: AttackStats;
  relayStats: unknown;
  /** Well-behaved clients' lost replies, disconnects and failed probes. */
  refused: number;
  p99Ratio: number | null;
  pass: boolean | null;
  error: string | null;
}

/** Busy CPU of the whole machine (all cores, percent of one core) from /proc/stat, in clock ticks. */
function machineTicks(): { busy: number; at: number } | null {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - idle, at: performance.now() };
  } catch {
    return null;
  }
}

/** CPU that processes other than this benchmark's used meanwhile (other work on a shared machine). */
function othersCpu(
  machine: [ReturnType<typeof machineTicks>, ReturnType<typeof machineTicks>],
  ours: Array<[ReturnType<typeof sampleProc>, ReturnType<typeof sampleProc>]>,
): number | null {
  const [a, b] = machine;
  if (!a || !b || b.at <= a.at) return null;
  const machinePct = (b.busy - a.busy) / ((b.at - a.at) / 1000); // ticks are 1/100 s: percent of one core
  const oursPct = ours.reduce((sum, [x, y]) => sum + (cpuPercent(x, y) ?? 0), 0);
  return Math.max(0, machinePct - oursPct);
}

/** Moves an attacker onto the load core (taskset -p) and lowers its priority; best effort. */
function pinAttacker(pid: number): void {
  try {
    if (LOAD_CPU !== undefined && ['/usr/bin/taskset', '/bin/taskset'].some((path) => existsSync(path))) {
      execFileSync('taskset', ['-a', '-p', '-c', LOAD_CPU, String(pid)], { stdio: 'ignore' });
    }
  } catch {
    // no taskset: the attacker runs on any core
  }
  renice(pid, ATTACKER_NICE);
}

function renice(pid: number, nice: number): void {
  try {
    setPriority(pid, nice);
  } catch {
    // not allowed here (not root): default priority
  }
}

async function rejectionSamples(ports: Ports): Promise<Map<string, number>> {
  const answer = await httpRequest(ports.ops, '/metrics', { localAddress: RUNNER_IP, timeoutMs: 10_000 });
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
  const samples = parseSamples(answer.body);
  return new Map([...samples].filter(([key]) => key.startsWith('noray_limit_rejections_total')));
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after) {
    const diff = value - (before.get(key) ?? 0);
    if (diff <= 0) continue;
    const front = /front="([^"]*)"/.exec(key)?.[1] ?? '?';
    const reason = /reason="([^"]*)"/.exec(key)?.[1] ?? '?';
    out[`${front}/${reason}`] = diff;
  }
  return out;
}

function refusedOf(window: WindowResult): number {
  const failures = Object.values(window.failures).reduce((a, b) => a + b, 0);
  const probes = Object.values(window.probes).reduce((a, probe) => a + probe.failed, 0);
  return window.echo.lost + window.relay.lost + failures + probes;
}

async function runPhase(
  name: string,
  title: string,
  ports: Ports,
  server: Child,
  measurer: Child,
  attacker: Child | null,
  hostOid: string,
): Promise<Row> {
  const row: Row = { phase: name, title, window: null, serverCpu: null, othersCpu: null, rejections: {}, attack: {}, relayStats: null, refused: 0, p99Ratio: null, pass: null, error: null };
  try {
    const before = await rejectionSamples(ports);
    if (attacker) {
      await attacker.call('start', { attack: name, ctx: { ports, hostOid, quick } }, PHASE_SLACK_MS);
      await sleep(WARMUP_MS);
    }
    const pids = [server.pid, measurer.pid, attacker?.pid ?? -1, process.pid];
    const oursBefore = pids.map((pid) => sampleProc(pid));
    const machineBefore = machineTicks();
    const windowDone = measurer.call<WindowResult>('window', { durationMs: WINDOW_MS, graceMs: GRACE_MS }, WINDOW_MS + GRACE_MS + 10_000);
    await sleep(WINDOW_MS);
    const oursAfter = pids.map((pid) => sampleProc(pid));
    const machineAfter = machineTicks();
    row.window = await windowDone;
    row.serverCpu = cpuPercent(oursBefore[0] ?? null, oursAfter[0] ?? null);
    row.othersCpu = othersCpu([machineBefore, machineAfter], oursBefore.map((before, i) => [before, oursAfter[i] ?? null]));
    if (attacker) row.attack = await attacker.call<AttackStats>('stop', null, PHASE_SLACK_MS);
    row.relayStats = await server.call('relayStats');
    row.rejections = delta(before, await rejectionSamples(ports));
    row.refused = refusedOf(row.window);
  } catch (error) {
    row.error = errorText(error);
  } finally {
    await attacker?.kill();
  }
  return row;
}

const ms = (n: number | null | undefined) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(2));

function judge(rows: Row[]): void {
  // The reference is the better of the quiet phases before and after, per measure: on a shared
  // machine one quiet window may catch someone else's burst, and the lower reference is stricter.
  const quiet = rows.filter((row) => row.phase.startsWith('quiet') && row.window !== null).map((row) => row.window as WindowResult);
  if (quiet.length === 0) return;
  const echoRef = Math.min(...quiet.map((w) => w.echo.p99));
  const relayRef = Math.min(...quiet.map((w) => w.relay.p99));
  for (const row of rows) {
    if (!row.window) continue;
    const ratios = [row.window.echo.p99 / echoRef, row.window.relay.p99 / relayRef].filter((r) => Number.isFinite(r));
    row.p99Ratio = ratios.length === 2 ? Math.max(...ratios) : null;
    row.pass =
      row.error === null &&
      row.p99Ratio !== null &&
      row.p99Ratio <= P99_RATIO_LIMIT &&
      row.window.echo.p99 < P99_LIMIT_MS &&
      row.window.relay.p99 < P99_LIMIT_MS &&
      row.refused === 0;
  }
}

function effectOf(row: Row): string {
  const parts = Object.entries(row.rejections)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([key, n]) => `${key} +${n}`);
  const stats = (HEADLINES[row.phase] ?? []).filter((key) => key in row.attack).map((key) => `${key}=${row.attack[key]}`);
  const text = [parts.length ? `refused: ${parts.join(', ')}` : '', stats.join(' ')].filter(Boolean).join('; ');
  return text || (row.phase.startsWith('quiet') ? '' : 'nothing refused');
}

function table(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

function render(rows: Row[], meta: Record<string, unknown>): string {
  const head = ['attack', 'echo p50', 'echo p99', 'relay p50', 'relay p99', 'p99 ratio vs quiet', 'server cpu', 'other cpu', 'well-behaved refused', 'verdict', "attack's effect"];
  const body = rows.map((row) => {
    const w = row.window;
    return [
      row.title,
      ms(w?.echo.p50),
      ms(w?.echo.p99),
      ms(w?.relay.p50),
      ms(w?.relay.p99),
      row.p99Ratio === null ? '-' : `${row.p99Ratio.toFixed(2)}x`,
      row.serverCpu === null ? '-' : `${Math.round(row.serverCpu)}%`,
      row.othersCpu === null ? '-' : `${Math.round(row.othersCpu)}%`,
      w ? String(row.refused) : '-',
      row.error ? 'ERROR' : row.pass === null ? '-' : row.pass ? 'PASS' : 'FAIL',
      row.error ? row.error : effectOf(row),
    ];
  });
  const details = rows.map((row) => {
    const w = row.window;
    const lines = [`${row.title}:`];
    if (w) {
      lines.push(
        `  echo: ${w.echo.samples}/${w.echo.sent} answered, max ${ms(w.echo.max)} ms; relay: ${w.relay.samples}/${w.relay.sent} answered, max ${ms(w.relay.max)} ms; host got ${w.hostNotifications} connect notifications; measurer event-loop delay p99 ${ms(w.measurerLag.p99)} ms, max ${ms(w.measurerLag.max)} ms`,
      );
      const probes = Object.entries(w.probes).map(([name, p]) => `${name} ${p.ok} ok/${p.failed} failed p99 ${ms(p.p99)} ms${p.firstError ? ` (${p.firstError})` : ''}`);
      lines.push(`  probes: ${probes.join('; ')}`);
      if (Object.keys(w.failures).length) lines.push(`  measuring clients: ${JSON.stringify(w.failures)}`);
    }
    if (Object.keys(row.rejections).length) lines.push(`  rejections: ${JSON.stringify(row.rejections)}`);
    if (Object.keys(row.attack).length) lines.push(`  attack: ${JSON.stringify(row.attack)}`);
    return lines.join('\n');
  });
  const attacks = rows.filter((row) => !row.phase.startsWith('quiet'));
  const passed = attacks.filter((row) => row.pass).length;
  return [
    `noray abuse benchmark (${quick ? 'quick' : 'full'}), ${String(meta.date)}, node ${process.version}, ${String(meta.pinning)}`,
    `default limits; measuring clients from 127.0.0.2, attacker from 127.0.0.1; ${WINDOW_MS / 1000} s per phase; times in ms`,
    '"p99 ratio vs quiet": the worse of echo and relay p99 over the better quiet phase; "other cpu": what other work on the machine used meanwhile (noise)',
    `PASS: both p99 within ${P99_RATIO_LIMIT}x of quiet and under ${P99_LIMIT_MS} ms, and no well-behaved client refused, disconnected or losing a reply`,
    '',
    table(head, body),
    '',
    `verdict: ${passed}/${attacks.length} attacks PASS${attacks.length > passed ? ` (not passing: ${attacks.filter((row) => !row.pass).map((row) => row.title).join(', ')})` : ''}`,
    '',
    ...details,
  ].join('\n');
}

async function main(): Promise<boolean> {
  const meta: Record<string, unknown> = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverage: loadavg(),
    pinning: twoCores ? `server on cpu 0; measurer and attackers on cpu 1 (nice: server ${SERVER_NICE}, measurer ${MEASURER_NICE}, attackers ${ATTACKER_NICE})` : 'none (one cpu)',
    windowMs: WINDOW_MS,
    serverEnv: SERVER_ENV,
  };
  const attacks = ATTACKS.filter((attack) => only === null || only.has(attack.name));
  const server = await Child.start('server.ts', {
    label: 'noray',
    cpu: SERVER_CPU,
    env: SERVER_ENV,
    // --profile: a V8 CPU profile of the server for the whole run (narrow it with --only).
    nodeArgs: profile ? ['--cpu-prof', '--cpu-prof-dir', `${BENCH_DIR}results/abuse-profile`] : [],
  });
  const ports = portsOf(await server.call<FrontPorts>('ports'));
  log(`server up: ${JSON.stringify(ports)}`);
  // Every attacker process starts now, idle until its phase: no process start inside a measurement.
  // They start on any core (quicker) and are moved to the load core, below the measurer's priority.
  const [measurer, ...attackers] = await Promise.all([
    Child.start('abuse/measure.ts', { label: 'measurer', cpu: LOAD_CPU }),
    ...attacks.map((attack) => Child.start('abuse/attacker.ts', { label: `attacker ${attack.name}` })),
  ]);
  if (!measurer) throw new Error('no measurer');
  renice(server.pid, SERVER_NICE);
  renice(measurer.pid, MEASURER_NICE);
  log('measurer and attackers started');
  for (const attacker of attackers) pinAttacker(attacker.pid);
  const { hostOid } = await measurer.call<{ hostOid: string }>('setup', { ports }, 30_000);
  log(`measuring clients ready (host ${hostOid})`);
  // A throwaway window first: JIT warm-up of server and measurer is no part of the quiet baseline.
  await measurer.call('window', { durationMs: WARMUP_WINDOW_MS, graceMs: 200 }, 30_000);
  await sleep(SETTLE_MS);

  const rows: Row[] = [];
  const phase = async (name: string, title: string, attacker: Child | null) => {
    log(`phase ${title}`);
    const row = await withTimeout(runPhase(name, title, ports, server, measurer, attacker, hostOid), WINDOW_MS + GRACE_MS + 3 * PHASE_SLACK_MS, title).catch(
      async (error: unknown): Promise<Row> => {
        await attacker?.kill();
        return { phase: name, title, window: null, serverCpu: null, othersCpu: null, rejections: {}, attack: {}, relayStats: null, refused: 0, p99Ratio: null, pass: null, error: errorText(error) };
      },
    );
    const w = row.window;
    log(
      row.error
        ? `  ERROR ${row.error}`
        : `  echo p50/p99 ${ms(w?.echo.p50)}/${ms(w?.echo.p99)} ms, relay ${ms(w?.relay.p50)}/${ms(w?.relay.p99)} ms, refused ${row.refused}, server cpu ${ms(row.serverCpu)}%`,
    );
    rows.push(row);
    await sleep(SETTLE_MS);
  };
  await phase('quiet', 'quiet (baseline)', null);
  for (const [index, attack] of attacks.entries()) await phase(attack.name, attack.title, attackers[index] ?? null);
  await phase('quiet-after', 'quiet (after)', null);
  await measurer.call('stop');
  judge(rows);

  meta.durationSeconds = Math.round((performance.now() - started) / 1000);
  mkdirSync(`${BENCH_DIR}results`, { recursive: true });
  writeFileSync(`${BENCH_DIR}results/abuse.json`, `${JSON.stringify({ meta, rows }, null, 2)}\n`);
  process.stdout.write(`${render(rows, meta)}\n`);
  log('wrote bench/results/abuse.json');
  if (profile) {
    await server.kill();
    log('server CPU profile in bench/results/abuse-profile/');
  }
  return rows.every((row) => row.error === null);
}

guardRun('bench:abuse', (quick ? 1.5 : 4) * 60_000);

main()
  .then((ok) => {
    if (!ok) process.exitCode = 1;
  })
  .catch((error: unknown) => {
    process.stderr.write(`bench:abuse failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
