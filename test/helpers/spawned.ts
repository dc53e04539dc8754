// Spawned processes for tests that run the real bin (or an example) the way users do.
import { spawn, type ChildProcess } from 'node:child_process';

export const WAIT_MS = 20_000;

/** Everything that binds a port: on an ephemeral port or off, on loopback. */
export const QUIET_PORTS: Record<string, string> = {
  NORAY_SOCKET_HOST: '127.0.0.1',
  NORAY_HTTP_HOST: '127.0.0.1',
  NORAY_UDP_HOST: '127.0.0.1',
  NORAY_LOBBY_HOST: '127.0.0.1',
  NORAY_WSRELAY_HOST: '127.0.0.1',
  NORAY_TCPRELAY_HOST: '127.0.0.1',
  NORAY_SOCKET_PORT: '0',
  NORAY_HTTP_PORT: '0',
  NORAY_UDP_REGISTRAR_PORT: '0',
  NORAY_UDP_RELAY_PORTS: 'off',
  NORAY_LOBBY_HTTP_PORT: 'off',
  NORAY_LOBBY_UDP_PORT: 'off',
  NORAY_WSRELAY_PORT: 'off',
  NORAY_TCPRELAY_PORT: 'off',
};

/**
 * The parent's environment without any NORAY_* variable, so only what a test sets counts, and
 * without what `npm test` adds about its own run (npm_lifecycle_event, npm_command, ...): the bin
 * acts on those. npm's configuration (npm_config_*) stays.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const npmRun = /^npm_/i.test(key) && !/^npm_config_/i.test(key);
    if (!key.startsWith('NORAY_') && !npmRun) env[key] = value;
  }
  return { ...env, ...extra };
}

export interface LogLine {
  msg?: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned process with its output collected and waitable. */
export class Run {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  /** Resolves once the process has exited and every holder of its stdout/stderr closed them. */
  readonly exited: Promise<Exit>;
  private waiters: Array<() => void> = [];
  /** Every holder of stdout/stderr has closed them: nothing more can be printed. */
  private closed = false;

  constructor(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
    this.child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
      this.notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
      this.notify();
    });
    this.exited = new Promise((resolveExit, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        this.closed = true;
        this.notify();
        resolveExit({ code, signal });
      });
    });
  }

  /** JSON log lines printed so far. */
  get logs(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first JSON log line with this message, as soon as it is printed. */
  async waitForLog(msg: string, ms = WAIT_MS): Promise<LogLine> {
    return this.waitFor(() => this.logs.find((line) => line.msg === msg), `log line "${msg}"`, ms);
  }

  async exit(ms = WAIT_MS): Promise<Exit> {
    return withTimeout(this.exited, ms, 'process exit');
  }

  private waitFor<T>(find: () => T | undefined, what: string, ms: number): Promise<T> {
    return new Promise<T>((resolveFound, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolveFound(found);
        } else if (this.closed) {
          clearTimeout(timer);
          reject(new Error(`process ended before ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out waiting for ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, ms);
      this.waiters.push(check);
      check();
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
