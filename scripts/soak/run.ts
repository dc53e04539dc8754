// Soak / chaos run: every front of one noray process at once, well-behaved clients churning through
// every flow (verified), misbehaving ones around them, memory sampled from /health.
//
//   npm run soak -- --duration 10m                  the long run (see docs/soak.md)
//   tsx scripts/soak/run.ts --duration 15s          a short one (part of npm test)
//   tsx scripts/soak/run.ts --duration 5s --sigterm graceful shutdown under load
//
// Exit code 0 only if every check passed. The last line is `SOAK RESULT {json}` for tools.
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { NetfoxClient } from '../../test/clients/netfox.js';
import { OrionClient } from '../../test/clients/orion.js';
import { RoccoClient } from '../../test/clients/rocco.js';
import { loginClient, loginServer } from '../../test/clients/carparty.js';
import { Chaos } from './chaos.js';
import { lobbyFlow, norayFlow, RelayBudget, tcprelayFlow, wsrelayFlow } from './flows.js';
import { canBind, RELAY_PORT_COUNT, ServerProcess, type Health } from './server.js';
import { MB, mb, parseDurationArg, sleep, slope, Tally, within } from './util.js';

/** Memory growth allowed after warm-up, in MB per minute (see docs/soak.md). */
const SLOPE_LIMIT_MB_PER_MIN = 2;
/** GC sawtooth amplitude the slope must see through: over a short window it dominates. */
const GC_NOISE_MB = 24;
/** Shorter windows after warm-up are reported but not judged. */
const MIN_SLOPE_WINDOW_MS = 55_000;
/** Relays expire this long after their last datagram (+ the sweep interval). */
const RELAY_TIMEOUT_MS = 2000;
const RELAY_CLEANUP_MS = 1000;
const SIGTERM_EXIT_LIMIT_MS = 5000;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60s' },
    clients: { type: 'string', default: '6' },
    chaos: { type: 'string', default: '4' },
    sample: { type: 'string', default: '2s' },
    sigterm: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  process.stdout.write(
    [
      'Usage: npm run soak -- [--duration 60s] [--clients 6] [--chaos 4] [--sample 2s] [--sigterm]',
      '  --duration  how long the load runs (15s, 10m, 1h)',
      '  --clients   well-behaved workers per front, each running one flow after another',
      '  --chaos     misbehaving workers (garbage, floods, slow readers, cut frames, half-open TCP)',
      '  --sample    how often /health is sampled for memory',
      '  --sigterm   at the end send SIGTERM under load and check the graceful shutdown instead',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const durationMs = parseDurationArg(args.duration);
const clientsPerFront = Math.max(1, Math.min(200, Number(args.clients)));
const chaosWorkers = Math.max(0, Math.min(100, Number(args.chaos)));
const sampleMs = Math.max(200, parseDurationArg(args.sample));

interface Sample {
  t: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

type Check = { name: string; ok: boolean; detail: string };

const log = (text: string) => process.stdout.write(`${text}\n`);

/** Stats that are capacities, not live state: they are not expected to drop to 0. */
const isCapacity = (key: string) => /free|bound|configured/i.test(key);

function leftovers(health: Health): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [front, { stats }] of Object.entries(health.fronts)) {
    for (const [key, value] of Object.entries(stats)) if (!isCapacity(key) && value !== 0) out[`${front}.${key}`] = value;
  }
  return out;
}

function pad(text: string | number, width: number): string {
  return String(text).padEnd(width);
}

async function main(): Promise<number> {
  const tally = new Tally();
  const checks: Check[] = [];
  const samples: Sample[] = [];
  let healthFailures = 0;
  const server = await ServerProcess.start({
    relayTimeout: `${RELAY_TIMEOUT_MS}ms`,
    relayCleanup: `${RELAY_CLEANUP_MS}ms`,
    extraEnv: {},
  });
  log(`soak: server pid ${server.pid}, ports ${JSON.stringify({ ...server.ports, relay: `${server.ports.relay[0]}..${server.ports.relay.at(-1)}` })}`);
  log(`soak: ${args.sigterm ? 'SIGTERM mode, ' : ''}duration ${durationMs / 1000}s, ${clientsPerFront} well-behaved workers per front, ${chaosWorkers} misbehaving`);
  const startedAt = Date.now();
  let stopping = false;
  /** After SIGTERM, failures of well-behaved flows are expected: the server is going away. */
  let serverGoing = false;
  const stop = () => stopping;
  const workers: Array<Promise<void>> = [];
  const chaos = new Chaos(server.ports, tally);

  try {
    const first = await server.health();
    const budget = new RelayBudget(RELAY_PORT_COUNT - 40, RELAY_TIMEOUT_MS + RELAY_CLEANUP_MS + 1500);
    const fronts: Array<[string, (tag: string) => Promise<boolean>]> = [
      ['noray', (tag) => norayFlow(server.ports, tag, budget, stop)],
      ['lobby', (tag) => lobbyFlow(server.ports, tag)],
      ['wsrelay', (tag) => wsrelayFlow(server.ports, tag)],
      ['tcprelay', (tag) => tcprelayFlow(server.ports, tag)],
    ];
    for (const [front, flow] of fronts) {
      for (let w = 0; w < clientsPerFront; w++) {
        workers.push(
          (async () => {
            await sleep(Math.random() * 500);
            for (let n = 0; !stopping; n++) {
              try {
                if (await within(flow(`${w}x${n}`), 60_000, `${front} flow`)) tally.flow(front);
              } catch (error) {
                if (!serverGoing) tally.error(front, error);
              }
            }
          })(),
        );
      }
    }
    for (let c = 0; c < chaosWorkers; c++) workers.push(chaos.worker(stop));

    // Load runs; /health is sampled for memory.
    const loadEnd = startedAt + durationMs;
    let lastReport = Date.now();
    while (Date.now() < loadEnd) {
      await sleep(Math.min(sampleMs, Math.max(0, loadEnd - Date.now())));
      try {
        const { memory } = (await server.health()).process;
        samples.push({ t: Date.now() - startedAt, ...memory });
      } catch {
        healthFailures++;
      }
      if (Date.now() - lastReport >= 30_000) {
        lastReport = Date.now();
        const last = samples.at(-1);
        log(
          `soak: ${Math.round((Date.now() - startedAt) / 1000)}s flows ${tally.totalFlows} errors ${tally.totalErrors}` +
            (last ? ` rss ${mb(last.rss)} MB heap ${mb(last.heapUsed)} MB` : ''),
        );
      }
    }

    if (args.sigterm) {
      serverGoing = true;
      const result = await sigtermUnderLoad(server);
      checks.push(...result);
      stopping = true;
      chaos.release();
      await within(Promise.allSettled(workers), 30_000, 'workers to stop').catch(() => undefined);
    } else {
      stopping = true;
      const stopStart = Date.now();
      await within(Promise.allSettled(workers), 60_000, 'workers to stop').catch(() => {
        checks.push({ name: 'workers stop', ok: false, detail: 'workers still running 60 s after stop' });
      });
      chaos.release();
      // Clients have left; relays expire after their idle timeout. Wait for everything to drain.
      // The lobby clients' fetch() keeps idle HTTP connections for the server's Keep-Alive hint
      // (72 s): close them, so every server socket left over is the server's own doing.
      await closeFetchConnections();
      // Server sockets and handles must be back to their start count (the start count includes
      // the /health request itself, as does every later one).
      const startRes = first.process.activeResources;
      const grownSockets = (health: Health) =>
        Object.entries(health.process.activeResources).filter(
          ([type, n]) => /Socket|TCP|UDP|Pipe/i.test(type) && n > (startRes[type] ?? 0),
        );
      let last = await server.health();
      const drainDeadline = Date.now() + 30_000;
      while ((Object.keys(leftovers(last)).length > 0 || grownSockets(last).length > 0) && Date.now() < drainDeadline) {
        await sleep(250);
        last = await server.health();
      }
      const left = leftovers(last);
      const drainMs = Date.now() - stopStart;

      checks.push({
        name: 'leftovers',
        ok: Object.keys(left).length === 0,
        detail: Object.keys(left).length === 0 ? `none (drained ${(drainMs / 1000).toFixed(1)}s after stop)` : JSON.stringify(left),
      });

      // Memory: least squares over the second half of the load (the first half is warm-up).
      const half = samples.filter((s) => s.t >= durationMs / 2);
      const windowMin = half.length >= 2 ? ((half.at(-1) as Sample).t - (half[0] as Sample).t) / 60_000 : 0;
      const limit = Math.max(SLOPE_LIMIT_MB_PER_MIN, windowMin > 0 ? GC_NOISE_MB / windowMin : Infinity);
      const slopeOf = (key: 'rss' | 'heapUsed') => slope(half.map((s) => ({ x: s.t / 60_000, y: s[key] / MB })));
      const rssSlope = slopeOf('rss');
      const heapSlope = slopeOf('heapUsed');
      const startMem = first.process.memory;
      const endMem = last.process.memory;
      const ok = (value: number) => value <= limit;
      const judged = half.length >= 3 && windowMin * 60_000 >= MIN_SLOPE_WINDOW_MS;
      checks.push({
        name: 'memory slope',
        ok: judged ? ok(rssSlope) && ok(heapSlope) : true,
        detail:
          !judged
            ? `not judged: ${(windowMin * 60).toFixed(0)}s after warm-up is too short to see past GC (needs ${MIN_SLOPE_WINDOW_MS / 1000}s, i.e. --duration 2m or more)`
            : half.length >= 3
            ? `rss ${rssSlope.toFixed(2)} MB/min, heapUsed ${heapSlope.toFixed(2)} MB/min over the last ${(windowMin * 60).toFixed(0)}s (${half.length} samples); limit ${limit.toFixed(1)} MB/min`
            : 'too few samples to judge',
      });

      const endRes = last.process.activeResources;
      const grown = grownSockets(last);
      checks.push({
        name: 'open handles',
        ok: grown.length === 0,
        detail: grown.length === 0 ? 'server sockets back to their start count' : `grew: ${JSON.stringify(Object.fromEntries(grown))}`,
      });

      log('');
      log('=== noray soak summary ===');
      log(`duration ${(durationMs / 1000).toFixed(0)}s, ${clientsPerFront} well-behaved workers per front, ${chaosWorkers} misbehaving workers`);
      log('');
      log(`${pad('front', 10)}${pad('flows', 10)}errors`);
      for (const [front] of fronts) log(`${pad(front, 10)}${pad(tally.flows.get(front) ?? 0, 10)}${tally.errors.get(front) ?? 0}`);
      log(`${pad('total', 10)}${pad(tally.totalFlows, 10)}${tally.totalErrors}`);
      log('');
      log(`misbehaving actions: ${[...tally.abuse.entries()].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
      log('');
      log(`${pad('memory (MB)', 14)}${pad('start', 10)}${pad('end', 10)}slope after warm-up (MB/min)`);
      log(`${pad('rss', 14)}${pad(mb(startMem.rss), 10)}${pad(mb(endMem.rss), 10)}${rssSlope.toFixed(2)}`);
      log(`${pad('heapUsed', 14)}${pad(mb(startMem.heapUsed), 10)}${pad(mb(endMem.heapUsed), 10)}${heapSlope.toFixed(2)}`);
      log(`${pad('heapTotal', 14)}${pad(mb(startMem.heapTotal), 10)}${pad(mb(endMem.heapTotal), 10)}`);
      log(`${pad('external', 14)}${pad(mb(startMem.external), 10)}${pad(mb(endMem.external), 10)}`);
      const peak = samples.reduce((m, s) => Math.max(m, s.rss), 0);
      log(`peak rss ${mb(peak)} MB; ${samples.length} samples every ${sampleMs / 1000}s`);
      log('');
      log(`open handles at start: ${JSON.stringify(startRes)}`);
      log(`open handles at end:   ${JSON.stringify(endRes)}`);
      log(`leftovers after clients left: ${Object.keys(left).length === 0 ? 'none' : JSON.stringify(left)}`);
      log(`final stats: ${JSON.stringify(Object.fromEntries(Object.entries(last.fronts).map(([f, { stats }]) => [f, stats])))}`);
      log(`server log lines ${server.logLines}, error lines ${server.errorLineCount}`);
    }

    checks.unshift({
      name: 'well-behaved errors',
      ok: tally.totalErrors === 0,
      detail: `${tally.totalErrors} errors in ${tally.totalFlows} flows`,
    });
    // Every front completed flows (under SIGTERM after a few seconds: the load was at least running).
    const flowsRan = args.sigterm ? tally.totalFlows > 0 : tally.flows.size === 4;
    checks.push({ name: 'flows ran', ok: flowsRan, detail: [...tally.flows.entries()].map(([f, n]) => `${f} ${n}`).join(', ') || 'none' });
    checks.push({ name: '/health sampling', ok: healthFailures === 0, detail: `${healthFailures} failed of ${samples.length + healthFailures}` });
    checks.push({
      name: 'server error logs',
      ok: server.errorLineCount === 0,
      detail: server.errorLineCount === 0 ? 'none' : `${server.errorLineCount}: ${server.errorLines.join(' | ')}`,
    });
    if (!args.sigterm) checks.push({ name: 'server alive', ok: server.exit === null, detail: server.exit ? JSON.stringify(server.exit) : 'yes' });

    if (tally.firstErrors.length > 0) {
      log('');
      log('first errors of well-behaved clients:');
      for (const line of tally.firstErrors) log(`  ${line}`);
    }
    log('');
    log('checks:');
    for (const c of checks) log(`  ${c.ok ? 'PASS' : 'FAIL'}  ${pad(c.name, 22)}${c.detail}`);
    const passed = checks.every((c) => c.ok);
    log('');
    log(
      `SOAK RESULT ${JSON.stringify({
        passed,
        mode: args.sigterm ? 'sigterm' : 'soak',
        flows: Object.fromEntries(tally.flows),
        errors: tally.totalErrors,
        checks: Object.fromEntries(checks.map((c) => [c.name, c.ok])),
      })}`,
    );
    return passed ? 0 : 1;
  } finally {
    stopping = true;
    chaos.release();
    await server.kill();
  }
}

/**
 * Opens one idle, logged-in observer per front, sends SIGTERM while the load runs and checks: exit 0
 * within 5 s, every observer told (a WebSocket close frame, a TCP FIN), every port free again.
 */
async function sigtermUnderLoad(server: ServerProcess): Promise<Check[]> {
  const checks: Check[] = [];
  const p = server.ports;
  const lobby = await OrionClient.connect(p.lobbyHttp, p.lobbyUdp);
  const lobbyHost = await OrionClient.connect(p.lobbyHttp, p.lobbyUdp);
  const created = await lobbyHost.createLobby({ lobbyName: 'sigterm' });
  await lobby.join((created.body as { lobbyId: string }).lobbyId, 'watcher');
  const wsServer = await loginServer(p.ws, 'sigterm-observer');
  const wsPhone = await loginClient(p.ws, wsServer, 'sigterm-observer', 'phone');
  const rocco = await RoccoClient.init(p.tcp, 'sigterm-observer');
  const noray = await NetfoxClient.connect(p.control);
  await noray.registerHost();
  const fin = (socket: Socket) => {
    let ended = false;
    socket.once('end', () => (ended = true));
    return () => ended;
  };
  const roccoFin = fin(rocco.client.socket);
  const norayFin = fin(noray.socket);

  const sentAt = Date.now();
  server.signal('SIGTERM');
  const exited = await server.waitExit(SIGTERM_EXIT_LIMIT_MS + 5000);
  const exitMs = (server.exit?.at ?? Date.now()) - sentAt;
  checks.push({
    name: 'exit after SIGTERM',
    ok: exited && server.exit?.code === 0 && exitMs <= SIGTERM_EXIT_LIMIT_MS,
    detail: exited ? `code ${server.exit?.code} signal ${server.exit?.signal} after ${exitMs} ms (limit ${SIGTERM_EXIT_LIMIT_MS})` : 'still running',
  });

  const wsCode = async (closed: Promise<{ code: number }>) => (await within(closed, 3000, 'close').catch(() => ({ code: -1 }))).code;
  const codes = {
    lobbyMember: await within(lobby.waitClosed(3000), 3000, 'lobby close').catch(() => -1),
    lobbyHost: await within(lobbyHost.waitClosed(3000), 3000, 'lobby close').catch(() => -1),
    wsrelayServer: await wsCode(wsServer.closed),
    wsrelayPhone: await wsCode(wsPhone.closed),
  };
  await within(rocco.client.closed, 3000, 'tcprelay close').catch(() => undefined);
  await within(noray.waitClosed(3000), 3000, 'noray close').catch(() => undefined);
  // 1000/1001 mean a close frame arrived; 1006 means the TCP connection just went away.
  const told = Object.entries(codes).filter(([, code]) => code === 1000 || code === 1001);
  checks.push({
    name: 'WebSockets told',
    ok: told.length === Object.keys(codes).length,
    detail: `close codes ${JSON.stringify(codes)} (1001 going away / 1000 expected, 1006 = no close frame)`,
  });
  checks.push({
    name: 'TCP clients told',
    ok: roccoFin() && norayFin(),
    detail: `tcprelay ${roccoFin() ? 'FIN' : 'no FIN'}, noray control ${norayFin() ? 'FIN' : 'no FIN'}`,
  });

  const bound = server.boundPorts();
  const free = await Promise.all(bound.map((b) => canBind(b.kind, b.port)));
  const stillBound = bound.filter((_, i) => !free[i]).map((b) => `${b.name} ${b.kind}/${b.port}`);
  checks.push({
    name: 'ports free after exit',
    ok: stillBound.length === 0,
    detail: stillBound.length === 0 ? `all ${bound.length} ports bindable again` : `still bound: ${stillBound.slice(0, 10).join(', ')}`,
  });
  for (const client of [lobby, lobbyHost]) void client.close().catch(() => undefined);
  for (const peer of [wsServer, wsPhone]) peer.ws.terminate();
  rocco.client.socket.destroy();
  noray.close();

  log('');
  log('=== noray SIGTERM under load ===');
  log(`exit: code ${server.exit?.code ?? 'none'} after ${exitMs} ms`);
  log(`observers: ${JSON.stringify(codes)}; tcprelay ${roccoFin() ? 'FIN' : 'no FIN'}; noray ${norayFin() ? 'FIN' : 'no FIN'}`);
  log(`ports: ${stillBound.length === 0 ? `all ${bound.length} free` : stillBound.join(', ')}`);
  return checks;
}

/** Closes the idle keep-alive connections of this process's fetch() (Node's bundled undici agent). */
async function closeFetchConnections(): Promise<void> {
  const key = Symbol.for('undici.globalDispatcher.1');
  const dispatcher = (globalThis as Record<symbol, unknown>)[key] as { close?: () => Promise<void> } | undefined;
  if (typeof dispatcher?.close === 'function') await within(dispatcher.close(), 5000, 'closing fetch connections').catch(() => undefined);
}

main().then(
  (code) => {
    process.exitCode = code;
    // Stray client sockets of a failed run must not keep the script alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 2;
    setTimeout(() => process.exit(2), 2000).unref();
  },
);
