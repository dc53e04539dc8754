import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import type { NorayFront } from '../../src/fronts/noray/index.js';
import { port, startApp } from '../helpers/app.js';
import { rejections } from '../helpers/metrics.js';
import { describeEachEngine } from '../helpers/relay-engines.js';
import { NetfoxClient } from '../clients/netfox.js';

const clients: NetfoxClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

async function startNoray(overrides: Partial<Config>): Promise<App> {
  return startApp({ socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0, 0], ...overrides });
}

async function player(app: App): Promise<NetfoxClient> {
  const client = await NetfoxClient.connect(port(app, 'noray', 'control'));
  clients.push(client);
  return client;
}

function metric(app: App, reason: string): Promise<number> {
  return rejections(app.metrics, 'noray', reason);
}

describe('noray front limits', () => {
  it('refuses connections over the per-IP limit with an error line, counted in metrics', async () => {
    const app = await startNoray({ maxConnectionsPerIp: 2 });
    const a = await player(app);
    const b = await player(app);
    const c = await player(app);
    expect(await c.next('error')).toBe('server');
    await c.waitClosed();
    a.putCommand('echo', 'alive');
    expect(await a.next('echo')).toBe('alive');
    expect(await metric(app, 'max_connections_per_ip')).toBe(1);
    // A slot frees when a connection ends.
    b.close();
    await expect.poll(() => app.front('noray')?.stats().connections).toBe(1);
    const d = await player(app);
    d.putCommand('echo', 'in');
    expect(await d.next('echo')).toBe('in');
  });

  it('closes connections that never register, but never a registered idle one', async () => {
    const clock = new ManualClock();
    const app = await startApp({ socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0, 0], loginTimeout: 300 }, { clock });
    const silent = await player(app);
    const registered = await player(app);
    await registered.registerHost();
    // Both login deadlines pass at once: only the connection that never registered is closed.
    clock.advance(10_000);
    expect(await silent.next('error', 5000)).toBe('no');
    await silent.waitClosed();
    registered.putCommand('echo', 'first');
    expect(await registered.next('echo')).toBe('first');
    expect(registered.closed).toBe(false);
    registered.putCommand('echo', 'still');
    expect(await registered.next('echo')).toBe('still');
    expect(await metric(app, 'login_timeout')).toBe(1);
  });

  it('closes a connection that floods commands, after an error line', async () => {
    const app = await startNoray({ messageRate: 10, messageBurst: 5 });
    const flooder = await player(app);
    flooder.send('echo x\n'.repeat(50));
    expect(await flooder.next('error')).toBe('too');
    await flooder.waitClosed();
    expect(flooder.rawLines.length).toBe(0);
    const calm = await player(app);
    calm.putCommand('echo', 'ok');
    expect(await calm.next('echo')).toBe('ok');
  });

  it('refuses register-host past the session limit', async () => {
    const app = await startNoray({ maxSessions: 1 });
    const first = await player(app);
    await first.registerHost();
    // Re-registering on the same connection replaces, so it is not refused.
    await first.registerHost();
    const second = await player(app);
    second.putCommand('register-host');
    expect(await second.next('error')).toBe('server');
    expect(await metric(app, 'max_sessions')).toBe(1);
  });

  it('with denyPrivatePeers, refuses registrations from loopback with a reply no longer than the request', async () => {
    const app = await startNoray({ denyPrivatePeers: true });
    const client = await player(app);
    await client.registerHost();
    expect(await client.registerRemote(port(app, 'noray', 'registrar'))).toBe('FAILED');
    expect(await metric(app, 'denied_peer')).toBeGreaterThanOrEqual(1);
  });

});

describeEachEngine('noray relay port caps', (engine) => {
  it('caps the relay ports one source can hold: a monopoly attempt is refused, a host with 32 relayed players works', async () => {
    const app = await startNoray({ udpRelayEngine: engine, udpRelayPorts: Array.from({ length: 120 }, () => 0), udpRelayMaxPerSource: 16 });
    const registrar = port(app, 'noray', 'registrar');
    const registered = async (localAddress: string) => {
      const client = await NetfoxClient.connect(port(app, 'noray', 'control'), '127.0.0.1', localAddress);
      clients.push(client);
      await client.registerHost();
      expect(await client.registerRemote(registrar, { timeoutMs: 20_000 })).toBe('OK');
      return client;
    };
    // One IP keeps making players that relay to each other, as an attacker taking the pool would
    // (six at a time: a loaded CI machine is slow to register two dozen at once).
    const attackers: NetfoxClient[] = [];
    for (let batch = 0; batch < 4; batch++) {
      attackers.push(...(await Promise.all(Array.from({ length: 6 }, () => registered('127.0.0.1')))));
    }
    const answers: string[] = [];
    for (let i = 0; i + 1 < attackers.length; i += 2) {
      const [a, b] = [attackers[i] as NetfoxClient, attackers[i + 1] as NetfoxClient];
      a.putCommand('connect-relay', b.oid);
      const answer = () => a.rawLines.find((line) => line.command === 'connect-relay' || line.command === 'error')?.command;
      await expect.poll(answer).toBeDefined();
      answers.push(answer() as string);
    }
    // 16 ports are 8 pairs; the other 4 pairs are refused.
    expect(answers.filter((answer) => answer === 'connect-relay')).toHaveLength(8);
    expect(answers.filter((answer) => answer === 'error')).toHaveLength(4);
    const relay = app.front<NorayFront>('noray')?.relay;
    expect(relay?.chargedTo('127.0.0.1')).toBe(16);
    expect(await metric(app, 'relays_per_source')).toBe(4);

    // A host elsewhere with 32 players on other addresses is not affected.
    const host = await registered('127.0.0.2');
    for (let i = 0; i < 32; i++) {
      const player = await registered(`127.0.1.${i + 1}`);
      player.putCommand('connect-relay', host.oid);
      expect(Number(await player.next('connect-relay'))).toBeGreaterThan(0);
      expect(Number(await host.next('connect-relay'))).toBeGreaterThan(0);
    }
    expect(relay?.stats.relays).toBeLessThanOrEqual(16 + 33);
  }, 90_000);
});
