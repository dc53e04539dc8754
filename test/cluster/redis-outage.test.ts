// Redis unreachable: a node keeps serving what is local, refuses what needs Redis with each
// protocol's error at once (no request hangs), and recovers by itself when Redis is back: it
// rejoins and re-publishes the sessions, addresses and rooms of its connections.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginClient, loginServer, WsPeer } from '../clients/carparty.js';
import { NetfoxClient } from '../clients/netfox.js';
import { eventually } from '../clients/orion.js';
import { RoccoClient } from '../clients/rocco.js';
import { port, startApp } from '../helpers/app.js';
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js';

const missing = redisMissing();
const onCi = process.env.CI === 'true';

describe.skipIf(missing !== null && !onCi)('a cluster node while Redis is down, and after it restarted empty', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    if (missing !== null) throw new Error(`${missing}: the cluster tests need it on CI`);
    redis = await startRedis();
  });
  afterAll(async () => redis?.stop());

  it('answers with protocol errors at once, keeps its open connections, and puts its sessions and rooms back once Redis is back', async () => {
    const app = await startApp({
      socketPort: 0,
      udpRegistrarPort: 0,
      wsrelayPort: 0,
      tcprelayPort: 0,
      redisUrl: redis.url,
      clusterName: `o${randomBytes(4).toString('hex')}`,
      nodeId: 'solo',
      nodeHeartbeat: 200,
      nodeTimeout: 600,
      // Not a liveness test: with 1 s pings a busy test process that stalls for 2 s drops the room.
      wsrelayPingInterval: 10_000,
    });
    const control = port(app, 'noray', 'control');
    const registrar = port(app, 'noray', 'registrar');
    const registered = await NetfoxClient.connect(control);
    await registered.registerHost();
    expect(await registered.registerRemote(registrar)).toBe('OK');
    const room = await loginServer(port(app, 'wsrelay', 'ws'), 'KEPT');

    await redis.stop();
    // noray: the command is answered with an error line, and the connection stays.
    const host = await NetfoxClient.connect(control);
    host.putCommand('register-host');
    expect(await host.next('error', 3000)).toBe('internal');
    registered.putCommand('echo', 'still-here');
    expect(await registered.next('echo', 3000)).toBe('still-here');
    // wsrelay: a login the store cannot answer is closed (1011), so the game can retry.
    const server = await WsPeer.open(port(app, 'wsrelay', 'ws'));
    server.send({ action: 'login_server', server_code: 'DOWN' });
    expect((await server.closed).code).toBe(1011);
    // tcprelay: INIT is answered with an ERROR frame.
    const rocco = await RoccoClient.open(port(app, 'tcprelay', 'tcp'));
    rocco.send({ payloadType: 'INIT', source: 'x' });
    expect(await rocco.next()).toMatchObject({ payloadType: 'ERROR' });
    await rocco.end();

    await redis.restart();
    // node-redis reconnects by itself; the node rejoins the cluster.
    await eventually(async () => {
      const again = await NetfoxClient.connect(control);
      try {
        await again.registerHost();
        return again.oid !== '';
      } catch {
        return false;
      } finally {
        again.close();
      }
    }, 15_000);
    // The node put its state back into the empty Redis: the host registered before the outage is
    // still reachable by its OpenID, and the room opened before it still takes phones.
    const client = await NetfoxClient.connect(control);
    await client.registerHost();
    expect(await client.registerRemote(registrar)).toBe('OK');
    // Republished when the node's heartbeat finds its key gone (within a heartbeat of reconnecting).
    await eventually(async () => {
      client.putCommand('connect', registered.oid);
      await new Promise((done) => setTimeout(done, 200));
      return client.rawLines.some((line) => line.command === 'connect');
    }, 10_000);
    expect(client.rawLines.find((line) => line.command === 'connect')?.data).toBe(`127.0.0.1:${registered.localPort}`);
    const phone = await loginClient(port(app, 'wsrelay', 'ws'), room, 'KEPT', 'p1');
    await Promise.all([phone.close(), room.close()]);
    for (const netfox of [client, host, registered]) netfox.close();
  });
});
