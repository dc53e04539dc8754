/** Memory per idle relay port, per idle relay and per idle noray session, measured in a server process. */
import { Child } from './lib/child.js';
import { NetfoxClient } from '../test/clients/netfox.js';
import type { BenchContext } from './context.js';
import { norayEnv, startNoray } from './relay.js';

interface Mem {
  heapUsed: number;
  rss: number;
  external: number;
}

export interface MemoryResults {
  ports: number;
  sessions: number;
  relays: number;
  perBoundPort: { rss: number; heap: number };
  perSession: { rss: number; heap: number };
  perRelay: { rss: number; heap: number };
  /** A relay in use costs its bound port plus its state. */
  idleRelaysPer100MB: number;
  idleSessionsPer100MB: number;
}

const per = (a: Mem, b: Mem, n: number) => ({ rss: Math.round((b.rss - a.rss) / n), heap: Math.round((b.heapUsed - a.heapUsed) / n) });

export async function memorySuite(ctx: BenchContext): Promise<MemoryResults> {
  const sessions = ctx.quick ? 200 : 2000;
  const ports = sessions + 16;
  // Bound-port cost: the same server with and without the relay ports.
  const empty = await startNoray(ctx, norayEnv(0), 'noray-mem0');
  const m0 = await empty.server.call<Mem>('memory');
  await empty.server.kill();
  const { server, ports: np } = await startNoray(ctx, norayEnv(ports), 'noray-mem');
  const peers = await Child.start('udp-peer.ts', { label: 'mem-peers', cpu: ctx.loadCpu });
  const clients: NetfoxClient[] = [];
  try {
    const base = await server.call<Mem>('memory');
    const perBoundPort = per(m0, base, ports);
    await peers.call('bind', { count: sessions });
    const registered: { client: NetfoxClient; oid: string; pid: string }[] = [];
    for (let i = 0; i < sessions; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, sessions - i) }, async () => {
          const client = await NetfoxClient.connect(np.control);
          clients.push(client);
          await client.registerHost();
          return { client, oid: client.oid, pid: client.pid };
        }),
      );
      registered.push(...batch);
    }
    await peers.call('register', { registrarPort: np.registrar, pids: registered.map((r) => r.pid) });
    const withSessions = await server.call<Mem>('memory');
    for (let i = 0; i + 1 < sessions; i += 2) {
      const a = registered[i]!;
      const b = registered[i + 1]!;
      a.client.putCommand('connect-relay', b.oid);
      await Promise.all([a.client.next('connect-relay', 10_000), b.client.next('connect-relay', 10_000)]);
    }
    const relays = sessions - (sessions % 2);
    const withRelays = await server.call<Mem>('memory');
    const perSession = per(base, withSessions, sessions);
    const perRelay = per(withSessions, withRelays, relays);
    // RSS moves in pages and the heap may be pre-grown: count the larger of the two for each part.
    const relayCost = Math.max(1, Math.max(perBoundPort.rss, perBoundPort.heap) + Math.max(perRelay.rss, perRelay.heap));
    const out: MemoryResults = {
      ports,
      sessions,
      relays,
      perBoundPort,
      perSession,
      perRelay,
      idleRelaysPer100MB: Math.floor((100 * 1048576) / relayCost),
      idleSessionsPer100MB: Math.floor((100 * 1048576) / Math.max(1, perSession.rss, perSession.heap)),
    };
    ctx.log(`memory: per bound relay port ${perBoundPort.rss} B rss (${perBoundPort.heap} B heap); per idle relay +${perRelay.rss} B rss (${perRelay.heap} B heap); per idle session ${perSession.rss} B rss (${perSession.heap} B heap)`);
    return out;
  } finally {
    for (const client of clients) client.close();
    await Promise.all([server.kill(), peers.kill()]);
  }
}
