// ClusterMembership over a real Redis: each node a membership on its own client, small timings
// (heartbeat 100 ms, ttl 300 ms) so deaths show within a second. abandon() stands for SIGKILL.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import { ClusterMembership, type ClusterMembershipOptions } from '../../../src/core/redis/membership.js';
import type { RedisClient } from '../../../src/core/redis/script.js';
import { uniquePrefix, useRedis } from '../../helpers/redis.js';

const redis = useRedis();

const HEARTBEAT = 100;
const TTL = 300;
const SWEEP = 100;

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function captureLogger() {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await sleep(10);
  }
}

const started: ClusterMembership[] = [];
const ownClients: RedisClientType[] = [];

afterEach(() => {
  for (const m of started.splice(0)) m.abandon();
});
afterAll(() => {
  for (const c of ownClients) if (c.isOpen) c.destroy();
});

function membership(client: RedisClient, prefix: string, nodeId: string, extra: Partial<ClusterMembershipOptions> = {}) {
  const log = captureLogger();
  const m = new ClusterMembership({
    client,
    prefix,
    nodeId,
    info: { ws: `ws://${nodeId}:8890`, port: 8890 },
    heartbeatMs: HEARTBEAT,
    ttlMs: TTL,
    sweepMs: SWEEP,
    clock: systemClock,
    logger: log.logger,
    ...extra,
  });
  started.push(m);
  return { m, lines: log.lines };
}

async function cluster(count: number, prefix = uniquePrefix('members'), clients?: RedisClient[]) {
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const client = clients?.[i] ?? (await redis.newClient());
    const node = membership(client, prefix, `n${i}`);
    await node.m.start();
    nodes.push({ ...node, client });
  }
  return { prefix, nodes };
}

describe.runIf(redis.available)('ClusterMembership', () => {
  it('lets three nodes see each other, with their info, within a sweep', async () => {
    const { nodes } = await cluster(3);
    await sleep(SWEEP + 50);
    for (const { m } of nodes) {
      expect([...m.nodes().keys()].sort()).toEqual(['n0', 'n1', 'n2']);
      expect(m.isAlive('n0') && m.isAlive('n1') && m.isAlive('n2')).toBe(true);
      expect(m.isAlive('n9')).toBe(false);
      // Never seen: perhaps it joined since the sweep, so deliveries to it are still published.
      expect(m.mayBeAlive('n9')).toBe(true);
      expect(m.nodes().get('n1')).toEqual({ ws: 'ws://n1:8890', port: 8890 });
    }
  });

  it('has exactly one survivor purge a crashed node, once, within ttl + 2 sweeps', async () => {
    const { prefix, nodes } = await cluster(3);
    const calls: { by: string; dead: string }[] = [];
    for (const { m } of nodes) {
      m.onNodeDead(async (dead) => {
        await sleep(20); // the winner awaits its listeners before unlisting
        calls.push({ by: m.nodeId, dead });
      });
    }
    await sleep(SWEEP + 50);
    const crashedAt = Date.now();
    nodes[2]!.m.abandon();
    await waitFor(() => calls.length > 0, 3_000);
    expect(Date.now() - crashedAt).toBeLessThan(TTL + 2 * SWEEP + 300);
    await sleep(TTL + 3 * SWEEP);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.dead).toBe('n2');
    expect(['n0', 'n1']).toContain(calls[0]!.by);
    for (const { m } of nodes.slice(0, 2)) {
      expect(m.isAlive('n2')).toBe(false);
      expect(m.mayBeAlive('n2')).toBe(false);
      expect([...m.nodes().keys()].sort()).toEqual(['n0', 'n1']);
    }
    expect((await redis.client().sMembers(`${prefix}nodes`)).sort()).toEqual(['n0', 'n1']);
    expect(await redis.client().exists(`${prefix}purge:n2`)).toBe(0);
  });

  it('does not purge a node that stopped cleanly', async () => {
    const { prefix, nodes } = await cluster(3);
    const calls: string[] = [];
    for (const { m } of nodes) m.onNodeDead((dead) => void calls.push(dead));
    await sleep(SWEEP + 50);
    await nodes[1]!.m.stop();
    expect(await redis.client().exists(`${prefix}node:n1`)).toBe(0);
    await sleep(TTL + 3 * SWEEP);
    expect(calls).toEqual([]);
    expect(nodes[0]!.m.isAlive('n1')).toBe(false);
    expect((await redis.client().sMembers(`${prefix}nodes`)).sort()).toEqual(['n0', 'n2']);
  });

  it('refuses a second node with the id of a live one, and accepts it once the first stopped', async () => {
    const prefix = uniquePrefix('members');
    const first = membership(await redis.newClient(), prefix, 'dup');
    await first.m.start();
    const second = membership(await redis.newClient(), prefix, 'dup');
    await expect(second.m.start()).rejects.toThrow(/already runs as "dup"/);
    await sleep(TTL + HEARTBEAT); // still refused: the first one keeps its key alive
    await expect(second.m.start()).rejects.toThrow(/already runs/);
    await first.m.stop();
    await second.m.start();
    expect(JSON.parse((await redis.client().get(`${prefix}node:dup`)) ?? 'null')).toEqual({ ws: 'ws://dup:8890', port: 8890 });
  });

  it('logs and survives a failing onNodeDead listener, and still unlists the dead node', async () => {
    const { prefix, nodes } = await cluster(2);
    nodes[0]!.m.onNodeDead(() => {
      throw new Error('listener broke');
    });
    let after = 0;
    nodes[0]!.m.onNodeDead(() => void after++);
    nodes[1]!.m.abandon();
    await waitFor(async () => (await redis.client().sMembers(`${prefix}nodes`)).length === 1, 3_000);
    expect(after).toBe(1);
    expect(nodes[0]!.lines.some((l) => l.level === 50 && l.msg.includes('onNodeDead listener failed'))).toBe(true);
  });

  it('rejoins when its key expired meanwhile: warns once, re-creates the key, fires onRejoined', async () => {
    const { prefix, nodes } = await cluster(2);
    let rejoined = 0;
    nodes[1]!.m.onRejoined(() => void rejoined++);
    await redis.client().del(`${prefix}node:n1`);
    await waitFor(() => rejoined === 1, 2_000);
    expect(await redis.client().exists(`${prefix}node:n1`)).toBe(1);
    await sleep(TTL + 2 * SWEEP);
    expect(rejoined).toBe(1);
    expect(nodes[1]!.lines.filter((l) => l.level === 40 && l.msg.includes('rejoining'))).toHaveLength(1);
    // whether or not n0 purged it meanwhile, n1 is listed and alive again
    await waitFor(() => nodes[0]!.m.isAlive('n1'), 2_000);
    expect((await redis.client().sMembers(`${prefix}nodes`)).sort()).toEqual(['n0', 'n1']);
  });

  // Last: it restarts the file's server (an empty one comes back).
  it('re-creates every key by itself after a Redis restart, logging the outage without crashing', async () => {
    const clients: RedisClientType[] = [];
    for (let i = 0; i < 3; i++) {
      const client: RedisClientType = createClient({ url: redis.server().url, socket: { reconnectStrategy: () => 50 } });
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      ownClients.push(client);
    }
    const { prefix, nodes } = await cluster(3, uniquePrefix('members'), clients);
    const rejoins = [0, 0, 0];
    nodes.forEach(({ m }, i) => m.onRejoined(() => void rejoins[i]!++));
    await sleep(SWEEP + 50);
    await redis.server().stop();
    await sleep(TTL + 4 * SWEEP);
    // while Redis is unreachable the last known view stands, and failures are logged, not thrown
    for (const { m, lines } of nodes) {
      expect([...m.nodes().keys()].sort()).toEqual(['n0', 'n1', 'n2']);
      expect(m.isAlive('n1')).toBe(true);
      const failures = lines.filter((l) => l.level === 50 && l.msg.includes('failed'));
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.length).toBeLessThanOrEqual(2); // at most once a minute per loop (heartbeat, sweep)
    }
    await redis.server().restart(); // an empty server comes back on the same port
    const probe = clients[0]!;
    await waitFor(async () => {
      try {
        const keys = await Promise.all(['n0', 'n1', 'n2'].map((id) => probe.exists(`${prefix}node:${id}`)));
        return keys.every((k) => k === 1) && rejoins.every((r) => r > 0);
      } catch {
        return false;
      }
    }, 10 * HEARTBEAT + 2_000);
    expect(rejoins).toEqual([1, 1, 1]);
    await waitFor(() => nodes.every(({ m }) => m.nodes().size === 3), 2_000);
    expect((await probe.sMembers(`${prefix}nodes`)).sort()).toEqual(['n0', 'n1', 'n2']);
  });
});
