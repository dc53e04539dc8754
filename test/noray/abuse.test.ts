// Abuse over real sockets: flooding a host with connect, taking a custom OpenID from its owner,
// guessing OpenIDs. Each attack fails, well-behaved players are unaffected, and it is counted.
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { port, startApp } from '../helpers/app.js';
import { rejections } from '../helpers/metrics.js';
import { NetfoxClient } from '../clients/netfox.js';

const clients: NetfoxClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

async function startNoray(overrides: Partial<Config>, clock = new ManualClock()): Promise<{ app: App; clock: ManualClock }> {
  const app = await startApp({ socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0, 0], ...overrides }, { clock });
  return { app, clock };
}

async function player(app: App): Promise<NetfoxClient> {
  const client = await NetfoxClient.connect(port(app, 'noray', 'control'));
  clients.push(client);
  return client;
}

/** register-host (with an OpenID of its own if given) and register_remote, as a game does. */
async function registered(app: App, oid?: string): Promise<NetfoxClient> {
  const client = await player(app);
  if (oid === undefined) await client.registerHost();
  else {
    client.putCommand('register-host', oid);
    await client.next('set-pid');
  }
  expect(await client.registerRemote(port(app, 'noray', 'registrar'))).toBe('OK');
  return client;
}

const metric = (app: App, reason: string) => rejections(app.metrics, 'noray', reason);

describe('noray abuse: flooding a host with connect', () => {
  it('keeps a host that does not read connected and its OpenID its own; connect still works for a newcomer', async () => {
    const { app, clock } = await startNoray({ connectBurst: 20, connectHostBurst: 4 });
    const host = await registered(app, 'victim-lobby');
    host.socket.pause();
    const attackers = await Promise.all(Array.from({ length: 8 }, () => registered(app)));
    for (const attacker of attackers) attacker.send('connect victim-lobby\n'.repeat(100));
    // Each attacker gets 20 answers within its own rate, then errors; repeats reach the host once,
    // and past its own rate (4 at once) nothing more does.
    await expect.poll(() => metric(app, 'connect_rate'), { timeout: 10_000 }).toBe(8 * 80);
    expect(await metric(app, 'connect_coalesced')).toBeGreaterThan(0);
    expect(await metric(app, 'connect_host_rate')).toBeGreaterThan(0);
    host.socket.resume();
    host.putCommand('echo', 'still-here');
    expect(await host.next('echo')).toBe('still-here');
    const notified = host.rawLines.filter((line) => line.command === 'connect');
    expect(notified.length).toBeLessThanOrEqual(4);
    expect(new Set(notified.map((line) => line.data)).size).toBe(notified.length);
    expect(host.closed).toBe(false);
    // The OpenID was never freed, so nobody could take it.
    const thief = await player(app);
    thief.putCommand('register-host', 'victim-lobby');
    expect(await thief.next('error')).toBe('OpenID');
    // Once the buckets refill, a newcomer connects as usual and the host hears of it.
    clock.advance(10_000);
    const newcomer = await registered(app);
    newcomer.putCommand('connect', 'victim-lobby');
    expect(await newcomer.next('connect')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await host.next('connect')).toBe(`127.0.0.1:${newcomer.localPort}`);
  });
});

describe('noray abuse: taking a custom OpenID from its owner', () => {
  it('reserves a custom OpenID freed by a disconnect for the holder of its last PrivateID', async () => {
    const { app } = await startNoray({ oidReservation: 30_000 });
    const owner = await player(app);
    owner.putCommand('register-host', 'my-lobby');
    const pid = await owner.next('set-pid');
    owner.close();
    await expect.poll(() => app.front('noray')?.stats().hosts).toBe(0);

    const thief = await player(app);
    thief.putCommand('register-host', 'my-lobby');
    await thief.next('error');
    thief.putCommand('register-host', `my-lobby ${'x'.repeat(pid.length)}`);
    await thief.next('error');
    expect(await metric(app, 'oid_reserved')).toBe(2);
    // Server-made OpenIDs register as always meanwhile.
    await thief.registerHost();

    const back = await player(app);
    back.putCommand('register-host', `my-lobby ${pid}`);
    expect(await back.next('set-oid')).toBe('my-lobby');
    expect(await back.next('set-pid')).not.toBe(pid);
  });

  it('frees the OpenID for anyone once the reservation is over', async () => {
    const { app, clock } = await startNoray({ oidReservation: 30_000 });
    const owner = await player(app);
    owner.putCommand('register-host', 'old-lobby');
    await owner.next('set-pid');
    owner.close();
    await expect.poll(() => app.front('noray')?.stats().hosts).toBe(0);
    clock.advance(30_001);
    const other = await player(app);
    other.putCommand('register-host', 'old-lobby');
    expect(await other.next('set-oid')).toBe('old-lobby');
  });
});

describe('noray abuse: guessing OpenIDs', () => {
  it('slows connect to unknown OpenIDs from one IP across connections; a known OpenID still answers', async () => {
    const { app } = await startNoray({ unknownOidBurst: 10, connectBurst: 100 });
    const host = await registered(app, 'real-lobby');
    const guessers = await Promise.all(Array.from({ length: 3 }, () => registered(app)));
    for (const [index, guesser] of guessers.entries()) {
      for (let n = 0; n < 6; n++) guesser.putCommand('connect', `guess-${index}-${n}`);
    }
    await expect.poll(() => metric(app, 'unknown_oid_rate')).toBe(8);
    const answers = guessers.flatMap((guesser) => guesser.rawLines.map((line) => line.data));
    expect(answers.filter((data) => data === 'unknown')).toHaveLength(10);
    expect(answers.filter((data) => data === 'too')).toHaveLength(8);
    const guest = await registered(app);
    guest.putCommand('connect', 'real-lobby');
    expect(await guest.next('connect')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await host.next('connect')).toBe(`127.0.0.1:${guest.localPort}`);
  });
});
