// Two nodes of one cluster in one process (two Apps on one Redis): the fronts' rules hold across
// nodes. The three-process suite (three-nodes.test.ts) runs the real bin on separate addresses.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { loginClient, loginServer } from '../clients/carparty.js';
import { NetfoxClient } from '../clients/netfox.js';
import { OrionClient } from '../clients/orion.js';
import { RoccoClient } from '../clients/rocco.js';
import { port, startApp } from '../helpers/app.js';
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js';

const missing = redisMissing();
const onCi = process.env.CI === 'true';

describe.skipIf(missing !== null && !onCi)('a cluster of two nodes in one process', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    if (missing !== null) throw new Error(`${missing}: the cluster tests need it on CI`);
    redis = await startRedis();
  });
  afterAll(async () => redis?.stop());

  async function cluster(overrides: Partial<Config>): Promise<[App, App]> {
    const clusterName = `t${randomBytes(4).toString('hex')}`;
    const node = (nodeId: string) => startApp({ ...overrides, redisUrl: redis.url, clusterName, nodeId, nodeHeartbeat: 200, nodeTimeout: 600 });
    return [await node('a'), await node('b')];
  }

  it('wsrelay: a game server on A, phones on B get and send messages, in order', async () => {
    const [a, b] = await cluster({ wsrelayPort: 0 });
    const server = await loginServer(port(a, 'wsrelay', 'ws'), 'ROOM1');
    await new Promise((done) => setTimeout(done, 100));
    const phone = await loginClient(port(b, 'wsrelay', 'ws'), server, 'ROOM1', 'p1');
    for (let i = 0; i < 50; i++) phone.send({ i });
    for (let i = 0; i < 50; i++) expect(JSON.parse(await server.next())).toEqual({ i, client_id: 'p1' });
    server.send({ to: 'all' });
    expect(JSON.parse(await phone.next())).toEqual({ to: 'all' });
    await phone.close();
    expect(JSON.parse(await server.next())).toEqual({ action: 'disconnect', client_id: 'p1' });
    await server.close();
  });

  it('noray: a host on A, a client on B: connect gives each the other\'s address', async () => {
    const [a, b] = await cluster({ socketPort: 0, udpRegistrarPort: 0 });
    const host = await NetfoxClient.connect(port(a, 'noray', 'control'));
    await host.registerHost();
    expect(await host.registerRemote(port(a, 'noray', 'registrar'))).toBe('OK');
    const client = await NetfoxClient.connect(port(b, 'noray', 'control'));
    await client.registerHost();
    expect(await client.registerRemote(port(b, 'noray', 'registrar'))).toBe('OK');
    client.putCommand('connect', host.oid);
    expect(await client.next('connect')).toBe(`127.0.0.1:${host.localPort}`);
    expect(await host.next('connect')).toBe(`127.0.0.1:${client.localPort}`);
    host.close();
    client.close();
  });

  it('tcprelay: a MESSAGE to an id on the other node arrives, in order', async () => {
    const [a, b] = await cluster({ tcprelayPort: 0 });
    const { client: alice } = await RoccoClient.init(port(a, 'tcprelay', 'tcp'), 'alice');
    const { client: bob } = await RoccoClient.init(port(b, 'tcprelay', 'tcp'), 'bob');
    for (let i = 0; i < 20; i++) alice.message('bob', `m${i}`);
    for (let i = 0; i < 20; i++) expect(await bob.next()).toMatchObject({ payloadType: 'MESSAGE', payload: `m${i}` });
    alice.message('nobody', 'x');
    expect(await alice.next()).toMatchObject({ payloadType: 'ERROR' });
    await Promise.all([alice.end(), bob.end()]);
  });

  it('lobby: a lobby made on A is joined through B, and chat reaches both', async () => {
    const [a, b] = await cluster({ lobbyHttpPort: 0, lobbyUdpPort: null });
    const host = await OrionClient.connect(port(a, 'lobby', 'http'));
    const guest = await OrionClient.connect(port(b, 'lobby', 'http'));
    const created = await host.createLobby({ isPublic: true });
    expect(created.status).toBe(201);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    expect((await guest.join(lobbyId, 'Guest')).status).toBe(200);
    expect(await host.next('lobby_peerConnect')).toMatchObject({ lobbyId, peerName: 'Guest' });
    guest.chat(lobbyId, 'hello from B');
    expect(await host.next('lobby_messaging_received')).toMatchObject({ message: { message: 'hello from B' } });
    await host.close();
    await guest.close();
  });

  it('dashboard: the page of either node lists both nodes, each with its own figures', async () => {
    const [a, b] = await cluster({ httpPort: 0, tcprelayPort: 0 });
    const rocco = await RoccoClient.open(port(b, 'tcprelay', 'tcp'));
    await rocco.init('on-b');
    const snapshotOf = async (app: App) => {
      const response = await fetch(`http://127.0.0.1:${port(app, 'ops', 'http')}/dashboard/stream`);
      const reader = response.body?.getReader();
      if (!reader) throw new Error('no stream');
      const decoder = new TextDecoder();
      let text = '';
      const deadline = Date.now() + 5000;
      try {
        for (;;) {
          const end = text.indexOf('\n\n');
          if (end >= 0) {
            const snapshot = JSON.parse(text.slice(text.indexOf('data: ') + 6, end)) as {
              node: { id: string; clustered: boolean };
              nodes: Array<{ nodeId: string; figures: Record<string, number> }>;
            };
            text = text.slice(end + 2);
            // Until both have posted since the client connected.
            if (snapshot.nodes.length === 2 && snapshot.nodes.some((node) => node.figures['tcprelay.ids'] === 1)) return snapshot;
          }
          if (Date.now() > deadline) throw new Error('no snapshot with both nodes');
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          text += decoder.decode(value, { stream: true });
        }
      } finally {
        await reader.cancel();
      }
    };
    for (const [app, id] of [[a, 'a'], [b, 'b']] as const) {
      const snapshot = await snapshotOf(app);
      expect(snapshot.node).toMatchObject({ id, clustered: true });
      const figures = Object.fromEntries(snapshot.nodes.map((node) => [node.nodeId, node.figures['tcprelay.ids']]));
      expect(figures).toEqual({ a: 0, b: 1 });
    }
    await rocco.end();
  });
});
