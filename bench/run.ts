/**
 * `npm run bench` / `npm run bench:quick`: starts the servers itself (loopback only), drives them
 * from generator processes, prints a table and writes bench/results/latest.json and a chart.
 *
 *   tsx bench/run.ts [--quick] [--only relay|control|memory[,..]] [--pairs 1,1000] [--sizes 64]
 *
 * The whole run has a hard deadline (15 min full, 3 min quick); every child is killed at the end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { BENCH_DIR, cpuCount, guardRun, killAll } from './lib/child.js';
import type { BenchContext } from './context.js';
import { controlSuite, type ControlRow } from './control.js';
import { memorySuite, type MemoryResults } from './memory.js';
import { renderSvg, renderText } from './report.js';
import { relaySuite, type RelayResults } from './relay.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIndex = args.indexOf('--only');
const only = onlyIndex >= 0 ? (args[onlyIndex + 1] ?? '').split(',') : ['relay', 'control', 'memory'];
const started = performance.now();
/** `--pairs 1,1000` / `--sizes 64`: narrow the relay matrix (for tuning runs). */
function listArg(name: string): number[] | undefined {
  const index = args.indexOf(name);
  const raw = index >= 0 ? args[index + 1] : undefined;
  return raw ? raw.split(',').map(Number).filter((n) => Number.isFinite(n) && n > 0) : undefined;
}

const twoCores = cpuCount() >= 2;
const ctx: BenchContext = {
  quick,
  serverCpu: twoCores ? '0' : undefined,
  loadCpu: twoCores ? '1' : undefined,
  stepMs: quick ? 500 : 1200,
  drainMs: quick ? 200 : 250,
  rates: quick ? [5000, 20000] : [10000, 20000, 40000, 60000, 80000, 100000, 120000, 140000, 160000, 180000, 220000, 260000],
  sizes: listArg('--sizes') ?? (quick ? [64] : [64, 1200]),
  pairCounts: listArg('--pairs') ?? (quick ? [1, 100] : [1, 100, 1000]),
  directAt: quick ? [1] : [1, 1000],
  rttRate: quick ? 2000 : 10000,
  cpuRates: quick ? [10000] : [40000, 150000],
  rttMs: quick ? 500 : 2000,
  rttRounds: quick ? 1 : 3,
  controlMs: quick ? 1000 : 3000,
  log: (line) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`),
};

interface Results {
  meta: Record<string, unknown>;
  relay?: RelayResults;
  control?: ControlRow[];
  memory?: MemoryResults;
}

async function main(): Promise<void> {
  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryMb: Math.round(totalmem() / 1048576),
      pinning: twoCores ? 'server (and baselines) on cpu 0, load generators on cpu 1 (taskset)' : 'none (one cpu)',
    },
  };
  if (only.includes('relay')) results.relay = await relaySuite(ctx);
  if (only.includes('control')) results.control = await controlSuite(ctx);
  if (only.includes('memory')) results.memory = await memorySuite(ctx);
  results.meta.durationSeconds = Math.round((performance.now() - started) / 1000);
  mkdirSync(`${BENCH_DIR}results`, { recursive: true });
  writeFileSync(`${BENCH_DIR}results/latest.json`, `${JSON.stringify(results, null, 2)}\n`);
  if (results.relay) writeFileSync(`${BENCH_DIR}results/relay.svg`, renderSvg(results.relay));
  process.stdout.write(`${renderText(results)}\n`);
  ctx.log(`wrote bench/results/latest.json${results.relay ? ' and bench/results/relay.svg' : ''}`);
}

guardRun('bench', (quick ? 3 : 15) * 60_000);

main()
  .catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
