import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RpcResponse } from './rpc.js';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const ROOT_DIR = fileURLToPath(new URL('../..', import.meta.url));

const live = new Set<Child>();
let tasksetChecked: boolean | null = null;

function hasTaskset(): boolean {
  if (tasksetChecked === null) {
    tasksetChecked = ['/usr/bin/taskset', '/bin/taskset'].some((path) => existsSync(path));
  }
  return tasksetChecked;
}

export function cpuCount(): number {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((line) => line.startsWith('processor')).length || 1;
  } catch {
    return 1;
  }
}

export interface SpawnOptions {
  /** CPU list for taskset, e.g. "0" or "1"; ignored where taskset is missing. */
  readonly cpu?: string;
  readonly env?: Record<string, string>;
  readonly nodeArgs?: readonly string[];
  readonly label: string;
}

/** A child process (node + tsx) that answers RPC calls over IPC. */
export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  readonly ready: Promise<void>;

  private constructor(
    readonly label: string,
    private readonly proc: ChildProcess,
  ) {
    live.add(this);
    let markReady: () => void = () => undefined;
    let failReady: (error: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    proc.on('message', (message: RpcResponse) => {
      if (message.id === 0) {
        markReady();
        return;
      }
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter.reject(new Error(`${label}: ${message.error}`));
      else waiter.resolve(message.result);
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      live.delete(this);
      const error = new Error(`${label} exited (${code ?? signal})`);
      failReady(error);
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  static async start(script: string, options: SpawnOptions): Promise<Child> {
    const nodeArgs = [...(options.nodeArgs ?? []), '--import', 'tsx', `${BENCH_DIR}${script}`];
    const [command, args] =
      options.cpu !== undefined && hasTaskset()
        ? ['taskset', ['-c', options.cpu, process.execPath, ...nodeArgs]]
        : [process.execPath, nodeArgs];
    const proc = spawn(command, args, {
      cwd: ROOT_DIR,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...(options.env ?? {}) },
    });
    const child = new Child(options.label, proc);
    const timeout = setTimeout(() => child.kill(), 30_000);
    try {
      await child.ready;
    } finally {
      clearTimeout(timeout);
    }
    return child;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  call<T>(method: string, params: unknown = null, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.label} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.proc.send({ id, method, params });
    });
  }

  /** Stops the child: SIGTERM, then SIGKILL if it is still there after a moment. */
  async kill(): Promise<void> {
    if (this.exited || this.proc.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.exited) this.proc.kill('SIGKILL');
    }, 2000);
    await exited;
    clearTimeout(timer);
  }
}

/** Kills every child still running (used in finally blocks and on signals). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((child) => child.kill()));
}

/** Synchronous last resort for process exit: SIGKILL by pid. */
export function killAllSync(): void {
  for (const child of live) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * A benchmark run's way out: past `deadlineMs` (unless it ended), on SIGINT/SIGTERM and at exit,
 * every child is SIGKILLed (the Child ones and those `alsoKill` knows of) and the process ends.
 */
export function guardRun(label: string, deadlineMs: number, alsoKill: () => void = () => undefined): void {
  const killEverything = () => {
    killAllSync();
    alsoKill();
  };
  const deadline = setTimeout(() => {
    process.stderr.write(`${label}: deadline passed, stopping\n`);
    killEverything();
    process.exit(1);
  }, deadlineMs);
  deadline.unref();
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      killEverything();
      process.exit(code);
    });
  }
  process.on('exit', killEverything);
}

/** CPU seconds (user+system) and RSS of a process, from /proc. */
export interface ProcSample {
  readonly at: number;
  readonly cpuSeconds: number;
  readonly rssBytes: number;
}

export function sampleProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (clock ticks; 100 per second on Linux)
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { at: performance.now(), cpuSeconds: ticks / 100, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
  } catch {
    return null;
  }
}

/** CPU use between two samples, in percent of one core. */
export function cpuPercent(a: ProcSample | null, b: ProcSample | null): number | null {
  if (!a || !b || b.at <= a.at) return null;
  return (100 * (b.cpuSeconds - a.cpuSeconds)) / ((b.at - a.at) / 1000);
}
