/** Shared bits of the abuse benchmark: addresses, ports, small network helpers, percentiles. */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

/** Every attacker sends from here (one source IP, so the per-IP limits apply to it). */
export const ATTACKER_IP = '127.0.0.1';
/** The well-behaved measuring clients: another loopback address, so the attacker's per-IP limits do not hit them. */
export const CLIENT_IP = '127.0.0.2';
/** The runner's own /metrics reads. */
export const RUNNER_IP = '127.0.0.3';
/** Where the server listens (Linux routes all of 127/8 to lo, sources may be any 127.x). */
export const SERVER_HOST = '127.0.0.1';

export type FrontPorts = Record<string, Record<string, number | number[]>>;

/** The ports the runner hands to the measurer and the attackers. */
export interface Ports {
  control: number;
  registrar: number;
  wsrelay: number;
  tcprelay: number;
  lobbyHttp: number;
  ops: number;
}

export function portsOf(all: FrontPorts): Ports {
  const pick = (front: string, role: string): number => {
    const value = all[front]?.[role];
    if (typeof value !== 'number') throw new Error(`server has no ${front}.${role} port: ${JSON.stringify(all)}`);
    return value;
  };
  return {
    control: pick('noray', 'control'),
    registrar: pick('noray', 'registrar'),
    wsrelay: pick('wsrelay', 'ws'),
    tcprelay: pick('tcprelay', 'tcp'),
    lobbyHttp: pick('lobby', 'http'),
    ops: pick('ops', 'http'),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? NaN;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return { samples: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

/** A plain HTTP request from a chosen source address; resolves with status and body. */
export function httpRequest(
  port: number,
  path: string,
  options: { method?: string; body?: string; localAddress?: string; timeoutMs?: number; agent?: import('node:http').Agent } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: SERVER_HOST,
        port,
        path,
        method: options.method ?? 'GET',
        localAddress: options.localAddress,
        agent: options.agent ?? false,
        headers: options.body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) } : {},
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A TCP connection from a chosen source address. */
export function tcpConnect(port: number, localAddress: string, timeoutMs = 5000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: SERVER_HOST, port, localAddress, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Random text of a given length over an alphabet. */
export function randomText(length: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)];
  return out;
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error));

/** Rejects with `what` after `ms` unless the promise settles first (and never leaves a timer behind). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- attacks ----

/** What an attack gets: the server's ports and the OpenID of the measured host (attack 5 aims at it). */
export interface AttackContext {
  readonly ports: Ports;
  readonly hostOid: string;
  readonly quick: boolean;
}

/** Counters an attack reports about itself (requests sent, answers, refusals, connections it lost). */
export type AttackStats = Record<string, number>;

export interface RunningAttack {
  /** Stops sending, closes every socket the attack opened, and reports its counters. */
  stop(): Promise<AttackStats>;
}

export type Attack = (ctx: AttackContext) => Promise<RunningAttack>;

/** A counter map that reads as a plain object. */
export class Counters {
  private readonly values = new Map<string, number>();
  add(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }
  get(name: string): number {
    return this.values.get(name) ?? 0;
  }
  toJSON(): AttackStats {
    return Object.fromEntries(this.values);
  }
}

/** Runs `body` in `count` loops until stop() is called; stop() waits for every loop to end. */
export function loops(count: number, body: (index: number, running: () => boolean) => Promise<void>): { stop(): Promise<void> } {
  let running = true;
  const done = Promise.allSettled(
    Array.from({ length: count }, async (_, index) => {
      while (running) await body(index, () => running);
    }),
  );
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** A UDP socket bound to a chosen address (any port). */
export function udpSocket(address: string): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, address, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/** The registrar dance of netfox (noray.gd register_remote): send the PrivateID every 100 ms until the first reply. */
export async function registerUdp(socket: UdpSocket, pid: string, port: number, timeoutMs = 8000): Promise<string> {
  let reply: string | null = null;
  const onMessage = (message: Buffer) => {
    reply ??= message.toString('utf8');
  };
  socket.on('message', onMessage);
  try {
    for (let waited = 0; waited < timeoutMs && reply === null; waited += 100) {
      socket.send(pid, port, SERVER_HOST);
      await sleep(100);
    }
  } finally {
    socket.off('message', onMessage);
  }
  return reply ?? 'TIMEOUT';
}
