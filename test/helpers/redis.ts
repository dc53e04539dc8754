// A real redis-server for the Redis store tests: one per test file, on a free loopback port, with
// no persistence (`--save '' --appendonly no`), so a stop loses everything. Without redis-server
// on PATH the Redis tests skip with a message, except on CI, where they fail (.ci/run installs it).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, connect } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createClient, type RedisClientType } from 'redis';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM to the process this helper started) and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port: an empty server (nothing is persisted). */
  restart(): Promise<void>;
}

const onCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Why the Redis tests cannot run here, or null when redis-server is on PATH. */
export function redisMissing(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return probe.error !== undefined || probe.status !== 0 ? 'redis-server is not on PATH (apt-get install redis-server)' : null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True once the server answers PING with PONG on a fresh connection. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      got += chunk.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

async function launch(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // A worker that dies or times out before afterAll must not leave the server running.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}) on port ${port}: ${stderr}`);
    if (await pings(port)) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer PING on port ${port} within 10 s: ${stderr}`);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts a redis-server on a free loopback port and waits until it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child = await launch(port);
  const stop = async () => {
    const running = child;
    running.kill('SIGTERM');
    await exited(running);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      child = await launch(port);
    },
  };
}

export async function connectClient(url: string): Promise<RedisClientType> {
  const client: RedisClientType = createClient({ url });
  client.on('error', () => undefined); // a restart drops connections; the test sees the failed command
  await client.connect();
  return client;
}

/** A key prefix no other test shares, in the shape the stores expect (`{hash tag}:`). */
export function uniquePrefix(label = 'test'): string {
  return `noray:{${label}-${randomBytes(6).toString('hex')}}:`;
}

export interface RedisFixture {
  /** False when redis-server is missing and this is not CI: leave the Redis rows out. */
  readonly available: boolean;
  readonly server: () => RedisServer;
  /** The file's shared client, connected in beforeAll. */
  readonly client: () => RedisClientType;
  /** Another connected client, closed in afterAll (a second node). */
  readonly newClient: () => Promise<RedisClientType>;
}

/**
 * Call at the top level of a test file: starts one redis-server and client for the file in
 * beforeAll and stops them in afterAll. Missing redis-server: skipped with a message, or on CI a
 * failing test that says why.
 */
export function useRedis(): RedisFixture {
  const missing = redisMissing();
  if (missing !== null) {
    if (onCi) {
      describe('Redis stores', () => {
        it('need redis-server (required on CI)', () => {
          throw new Error(`Redis store tests cannot run: ${missing}`);
        });
      });
    } else {
      console.warn(`Redis store tests skipped: ${missing}`);
      describe.skip(`Redis stores (skipped: ${missing})`, () => {
        it('needs redis-server', () => undefined);
      });
    }
    const absent = () => {
      throw new Error(`no redis-server: ${missing}`);
    };
    return { available: false, server: absent, client: absent, newClient: absent };
  }
  let server: RedisServer | undefined;
  let client: RedisClientType | undefined;
  const extra: RedisClientType[] = [];
  beforeAll(async () => {
    server = await startRedis();
    client = await connectClient(server.url);
  });
  afterAll(async () => {
    // destroy, not close: a client still reconnecting after a restart() would wait for the server.
    for (const c of [client, ...extra]) if (c?.isOpen) c.destroy();
    await server?.stop();
  });
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the Redis fixture is used before beforeAll ran');
    return value;
  };
  return {
    available: true,
    server: () => need(server),
    client: () => need(client),
    async newClient() {
      const c = await connectClient(need(server).url);
      extra.push(c);
      return c;
    },
  };
}
