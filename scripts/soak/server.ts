// The server under test: `node dist/bin/noray.js` as a child process, every front on, loopback only.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rnd, sleep, within } from './util.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${ROOT}dist/bin/noray.js`;
export const HOST = '127.0.0.1';
export const RELAY_PORT_COUNT = 200;

export interface Ports {
  control: number;
  registrar: number;
  relay: number[];
  lobbyHttp: number;
  lobbyUdp: number;
  ws: number;
  tcp: number;
  ops: number;
}

export interface Health {
  fronts: Record<string, { stats: Record<string, number> }>;
  process: {
    memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
    activeResources: Record<string, number>;
  };
}

export interface ServerSettings {
  relayTimeout: string;
  relayCleanup: string;
  extraEnv: Record<string, string>;
}

/** Is this port free to bind on loopback (TCP or UDP)? */
export function canBind(kind: 'tcp' | 'udp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (kind === 'tcp') {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, HOST, () => server.close(() => resolve(true)));
    } else {
      const socket = createSocket('udp4');
      socket.once('error', () => {
        socket.close();
        resolve(false);
      });
      socket.bind(port, HOST, () => socket.close(() => resolve(true)));
    }
  });
}

/** A run of RELAY_PORT_COUNT UDP ports in 20000-40000 that are all free right now. */
async function pickRelayRange(): Promise<number[]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const base = 20000 + rnd(20000 - RELAY_PORT_COUNT);
    const ports = Array.from({ length: RELAY_PORT_COUNT }, (_, i) => base + i);
    const free = await Promise.all(ports.map((port) => canBind('udp', port)));
    if (free.every(Boolean)) return ports;
  }
  throw new Error('no free range of relay ports found in 20000-40000');
}

export class ServerProcess {
  readonly errorLines: string[] = [];
  errorLineCount = 0;
  logLines = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly ports: Ports,
    exited: Promise<void>,
    lines: ReturnType<typeof createInterface>,
  ) {
    this.exited = exited;
    lines.on('line', (line) => this.onLine(line));
  }

  static async start(settings: ServerSettings): Promise<ServerProcess> {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build (npm run soak does)`);
    const relay = await pickRelayRange();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      NORAY_LOGLEVEL: 'info',
      NORAY_HTTP_HOST: HOST,
      NORAY_HTTP_PORT: '0',
      NORAY_SOCKET_HOST: HOST,
      NORAY_SOCKET_PORT: '0',
      NORAY_UDP_HOST: HOST,
      NORAY_UDP_REGISTRAR_PORT: '0',
      NORAY_UDP_RELAY_PORTS: `${relay[0]}-${relay[relay.length - 1]}`,
      NORAY_UDP_RELAY_TIMEOUT: settings.relayTimeout,
      NORAY_UDP_RELAY_CLEANUP_INTERVAL: settings.relayCleanup,
      NORAY_LOBBY_HOST: HOST,
      NORAY_LOBBY_HTTP_PORT: '0',
      NORAY_LOBBY_UDP_PORT: '0',
      NORAY_WSRELAY_HOST: HOST,
      NORAY_WSRELAY_PORT: '0',
      NORAY_TCPRELAY_HOST: HOST,
      NORAY_TCPRELAY_PORT: '0',
      // Every soak client comes from 127.0.0.1: the per-IP cap would otherwise be the first limit hit.
      NORAY_MAX_CONNECTIONS_PER_IP: '100000',
      NORAY_MAX_CONNECTIONS: '100000',
      // Likewise the per-IP answer budgets for guesses: well-behaved flows here expect their ERROR
      // for an unknown destination, and dozens of them share the one address.
      NORAY_TCPRELAY_GUESS_RATE: '100000',
      NORAY_TCPRELAY_GUESS_BURST: '100000',
      NORAY_WSRELAY_GUESS_RATE: '100000',
      NORAY_WSRELAY_GUESS_BURST: '100000',
      NORAY_UNKNOWN_OID_RATE: '100000',
      NORAY_UNKNOWN_OID_BURST: '100000',
      NORAY_UDP_RELAY_MAX_PER_SOURCE: '100000',
      NORAY_UDP_REGISTRAR_REPLY_RATE: '100000',
      NORAY_UDP_REGISTRAR_REPLY_BURST: '100000',
      // And the per-source read budgets, which every soak client's connections share.
      NORAY_SOURCE_MESSAGE_RATE: '10000000',
      NORAY_SOURCE_MESSAGE_BURST: '10000000',
      NORAY_SOURCE_BYTE_RATE: '1tb',
      NORAY_SOURCE_BYTE_BURST: '1tb',
      ...settings.extraEnv,
    };
    const child = spawn(process.execPath, [BIN], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      if (stderr.join('').length < 8000) stderr.push(text);
    });
    let markExited: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    let server: ServerProcess | null = null;
    child.on('exit', (code, signal) => {
      if (server) server.exit = { code, signal, at: Date.now() };
      markExited();
    });
    const lines = createInterface({ input: child.stdout! });
    try {
      const ready = await within(
        new Promise<Record<string, Record<string, unknown>>>((resolve, reject) => {
          lines.on('line', (line) => {
            if (!line.includes('"msg":"noray ready"')) return;
            const parsed = JSON.parse(line) as { ports: Record<string, Record<string, unknown>> };
            resolve(parsed.ports);
          });
          exited.then(() => reject(new Error(`server exited before ready: ${stderr.join('')}`)));
        }),
        15_000,
        'server ready line',
      );
      const num = (front: string, role: string): number => {
        const value = ready[front]?.[role];
        if (typeof value !== 'number') throw new Error(`ready line has no ${front}.${role} port`);
        return value;
      };
      const ports: Ports = {
        control: num('noray', 'control'),
        registrar: num('noray', 'registrar'),
        relay,
        lobbyHttp: num('lobby', 'http'),
        lobbyUdp: num('lobby', 'udp'),
        ws: num('wsrelay', 'ws'),
        tcp: num('tcprelay', 'tcp'),
        ops: num('ops', 'http'),
      };
      server = new ServerProcess(child, ports, exited, lines);
      return server;
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private onLine(line: string): void {
    this.logLines++;
    // pino levels: 50 error, 60 fatal.
    if (line.includes('"level":50') || line.includes('"level":60')) {
      this.errorLineCount++;
      if (this.errorLines.length < 5) this.errorLines.push(line.slice(0, 500));
    }
  }

  /** GET /health on a fresh connection (no keep-alive: the server's socket count stays readable). */
  health(): Promise<Health> {
    return within(
      new Promise<Health>((resolve, reject) => {
        const request = get({ host: HOST, port: this.ports.ops, path: '/health', agent: false }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => {
            if (response.statusCode !== 200) return reject(new Error(`/health answered ${response.statusCode}`));
            try {
              resolve(JSON.parse(body) as Health);
            } catch (error) {
              reject(error as Error);
            }
          });
          response.on('error', reject);
        });
        request.on('error', reject);
      }),
      5000,
      'GET /health',
    );
  }

  /** Resolves true once the process has exited (within ms). */
  async waitExit(ms: number): Promise<boolean> {
    if (this.exit) return true;
    return Promise.race([this.exited.then(() => true), sleep(ms).then(() => false)]);
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exit && this.child.pid !== undefined) process.kill(this.child.pid, signal);
  }

  /** SIGTERM, then SIGKILL if it lingers: never leaves the server running. */
  async kill(): Promise<void> {
    if (this.exit) return;
    this.signal('SIGTERM');
    if (await this.waitExit(5000)) return;
    this.signal('SIGKILL');
    await this.waitExit(5000);
  }

  /** Every TCP and UDP port the server had bound, by name. */
  boundPorts(): Array<{ kind: 'tcp' | 'udp'; port: number; name: string }> {
    const p = this.ports;
    return [
      { kind: 'tcp', port: p.control, name: 'noray control' },
      { kind: 'udp', port: p.registrar, name: 'noray registrar' },
      ...p.relay.map((port) => ({ kind: 'udp' as const, port, name: 'noray relay' })),
      { kind: 'tcp', port: p.lobbyHttp, name: 'lobby http' },
      { kind: 'udp', port: p.lobbyUdp, name: 'lobby udp' },
      { kind: 'tcp', port: p.ws, name: 'wsrelay' },
      { kind: 'tcp', port: p.tcp, name: 'tcprelay' },
      { kind: 'tcp', port: p.ops, name: 'ops http' },
    ];
  }
}
