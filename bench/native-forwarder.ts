/**
 * Reference only: builds bench/native/forwarder.c (recvmmsg/sendmmsg) with the system C compiler
 * if there is one and runs it, to show how far a native relay is from Node on this machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { BENCH_DIR } from './lib/child.js';
import { serve } from './lib/rpc.js';

const binary = `${BENCH_DIR}results/native-forwarder`;
let proc: ChildProcess | null = null;

function build(): boolean {
  try {
    mkdirSync(`${BENCH_DIR}results`, { recursive: true });
    execFileSync('cc', ['-O2', '-o', binary, `${BENCH_DIR}native/forwarder.c`], { stdio: 'ignore', timeout: 60_000 });
    return existsSync(binary);
  } catch {
    return false;
  }
}

async function setup(params: { pairs: [number, number][]; cpu?: string }): Promise<{ pid: number; ports: [number, number][] } | null> {
  stop();
  if (!existsSync(binary) && !build()) return null;
  const args = params.pairs.map(([a, b]) => `${a}:${b}`);
  const child = params.cpu !== undefined && existsSync('/usr/bin/taskset') ? spawn('taskset', ['-c', params.cpu, binary, ...args]) : spawn(binary, args);
  proc = child;
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const end = out.indexOf('\n');
      if (end >= 0) resolve(out.slice(0, end));
    });
    child.once('exit', () => reject(new Error('native forwarder exited')));
  });
  const ports = line.split(' ').map((pair) => pair.split(':').map(Number) as [number, number]);
  return { pid: child.pid ?? -1, ports };
}

function stop(): void {
  proc?.kill('SIGKILL');
  proc = null;
}

process.on('exit', stop);
process.on('SIGTERM', () => {
  stop();
  process.exit(0);
});
serve({ setup, stop });
