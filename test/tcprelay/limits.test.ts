import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { port, startApp } from '../helpers/app.js';
import { rejections as limitRejections, sampleOf } from '../helpers/metrics.js';
import { raw, RoccoClient } from '../clients/rocco.js';

const ZERO = { connections: 0, ids: 0, admitted: 0 };
const BUSY = '{"payloadType":"ERROR","payload":"Server busy: too many connections"}';
const LOGIN_TIMEOUT = '{"payloadType":"ERROR","payload":"Login timeout: no INIT in time"}';
const TOO_FAST = '{"payloadType":"ERROR","payload":"Too many frames: slow down"}';

async function relay(overrides: Partial<Config>, clock?: ManualClock) {
  const app = await startApp({ tcprelayPort: 0, ...overrides }, clock ? { clock } : {});
  return { app, port: port(app, 'tcprelay', 'tcp') };
}

const stats = (app: App) => app.front('tcprelay')!.stats();

const rejections = (app: App, reason: string) => limitRejections(app.metrics, 'tcprelay', reason);
const closes = (app: App, reason: string) => sampleOf(app.metrics, 'noray_tcprelay_closes_total', { reason });

/** Proves two initialized clients still reach each other. */
async function talk(a: RoccoClient, aId: string, b: RoccoClient, bId: string): Promise<void> {
  a.message(bId, 'ping');
  expect(await b.next()).toEqual({ payloadType: 'MESSAGE', source: aId, destination: bId, payload: 'ping' });
  b.message(aId, 'pong');
  expect(await a.next()).toEqual({ payloadType: 'MESSAGE', source: bId, destination: aId, payload: 'pong' });
}

/** The only frame a refused or cut connection gets, then the close. */
async function errorThenClose(client: RoccoClient): Promise<string> {
  const text = await client.nextText();
  await client.closed;
  expect(client.unread).toBe(0);
  return text;
}

async function endAll(app: App, clients: RoccoClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.end()));
  await expect.poll(() => stats(app)).toEqual(ZERO);
}

describe('tcprelay connection limits', () => {
  it('answers one ERROR frame over the per-IP limit, then closes; the slot frees when a client leaves', async () => {
    const { app, port: p } = await relay({ maxConnectionsPerIp: 2 });
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    const refused = await RoccoClient.open(p);
    // What it sends is read and discarded, so the ERROR frame is not lost to a reset.
    refused.send({ payloadType: 'INIT', source: 'c' });
    expect(await errorThenClose(refused)).toBe(BUSY);
    expect(await rejections(app, 'max_connections_per_ip')).toBe(1);
    expect(await rejections(app, 'max_connections')).toBe(0);
    await talk(a, 'a', b, 'b');
    expect(stats(app)).toEqual({ connections: 2, ids: 2, admitted: 2 });

    await b.end();
    await expect.poll(() => stats(app).admitted).toBe(1);
    const { client: c } = await RoccoClient.init(p, 'c');
    await talk(a, 'a', c, 'c');
    await endAll(app, [a, c]);
  });

  it('answers the same ERROR frame over the total limit, counted under its own reason', async () => {
    const { app, port: p } = await relay({ maxConnections: 1 });
    const { client: only } = await RoccoClient.init(p, 'only');
    const refused = await RoccoClient.open(p);
    expect(await errorThenClose(refused)).toBe(BUSY);
    expect(await rejections(app, 'max_connections')).toBe(1);
    expect(await rejections(app, 'max_connections_per_ip')).toBe(0);
    await endAll(app, [only]);
    const { client: next } = await RoccoClient.init(p, 'next');
    await endAll(app, [next]);
  });
});

describe('tcprelay login deadline', () => {
  it('sends an ERROR frame and closes a connection without INIT, never one that did INIT', async () => {
    const { app, port: p } = await relay({ loginTimeout: 500 });
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    // INIT then CLOSE: it identified itself once, so it is never cut for the deadline.
    b.send({ payloadType: 'CLOSE' });
    // A refused INIT (id taken) is not an identification.
    const refusedInit = await RoccoClient.open(p);
    refusedInit.send({ payloadType: 'INIT', source: 'a' });
    expect(await refusedInit.nextText()).toBe(
      '{"payloadType":"ERROR","destination":"a","payload":"ClientId: a is already initialized"}',
    );
    // Opened after the others: once it is cut, their deadlines have passed too.
    const silent = await RoccoClient.open(p);
    expect(await errorThenClose(silent)).toBe(LOGIN_TIMEOUT);
    expect(await errorThenClose(refusedInit)).toBe(LOGIN_TIMEOUT);
    expect(await b.init('b2')).toBe('b2');
    await talk(a, 'a', b, 'b2');
    expect(await rejections(app, 'login_timeout')).toBe(2);
    expect(await closes(app, 'login_timeout')).toBe(2);
    await endAll(app, [a, b]);
  });
});

describe('tcprelay frame rate', () => {
  it('sends an ERROR frame and closes a flooding connection; others are unaffected', async () => {
    // A clock that never moves: the bucket never refills, so the counts are exact.
    const { app, port: p } = await relay({ messageRate: 10, messageBurst: 5 }, new ManualClock());
    const { client: flooder } = await RoccoClient.init(p, 'flooder');
    const { client: calm } = await RoccoClient.init(p, 'calm');
    const frames = Array.from({ length: 20 }, (_, i) =>
      raw({ payloadType: 'MESSAGE', destination: 'calm', payload: String(i) }),
    );
    flooder.write(Buffer.concat(frames));
    expect(await errorThenClose(flooder)).toBe(TOO_FAST);
    // Its INIT took one token: 4 frames got through.
    expect((await calm.take(4)).map((f) => f.payload)).toEqual(['0', '1', '2', '3']);
    // The flooder's id is gone; nothing else arrived before this answer.
    calm.message('flooder', 'hello?');
    expect(await calm.next()).toEqual({
      payloadType: 'ERROR',
      destination: 'calm',
      payload: 'ClientId: flooder is not initialized',
    });
    expect(await rejections(app, 'message_rate')).toBe(1);
    expect(await closes(app, 'message_rate')).toBe(1);
    const { client: other } = await RoccoClient.init(p, 'other');
    await talk(calm, 'calm', other, 'other');
    await endAll(app, [calm, other]);
  });
});

describe('tcprelay limits leave nothing behind', () => {
  it('releases every slot and cancels every login timer, whatever closed the connection', async () => {
    const perIp = 30;
    const clock = new ManualClock();
    const { app, port: p } = await relay({ maxConnectionsPerIp: perIp, loginTimeout: 300, messageBurst: 5 }, clock);
    const flood = Buffer.concat(Array.from({ length: 10 }, () => raw({ payloadType: 'CLOSE' })));
    for (let round = 0; round < 3; round++) {
      const mixed = Array.from({ length: 20 }, async (_, i) => {
        const { client } = await RoccoClient.init(p, `r${round}-${i}`);
        if (i % 2 === 0) {
          client.write(flood);
          return errorThenClose(client);
        }
        client.socket.destroy();
        await client.closed;
        return 'gone';
      });
      expect(new Set(await Promise.all(mixed))).toEqual(new Set([TOO_FAST, 'gone']));
      await expect.poll(() => stats(app), { timeout: 10_000 }).toEqual(ZERO);
      // Fill every slot with silent clients (one mid-header), one more is refused, then the deadline passes.
      const silent: RoccoClient[] = [];
      for (let i = 0; i < perIp; i++) {
        const client = await RoccoClient.open(p);
        if (i === 0) client.write(Buffer.from([0, 0]));
        silent.push(client);
        await expect.poll(() => stats(app).admitted).toBe(i + 1);
      }
      expect(await errorThenClose(await RoccoClient.open(p))).toBe(BUSY);
      clock.advance(300);
      for (const client of silent) expect(await errorThenClose(client)).toBe(LOGIN_TIMEOUT);
      await expect.poll(() => stats(app), { timeout: 10_000 }).toEqual(ZERO);
    }
    // Every login deadline was cancelled or has fired.
    expect(clock.pending).toBe(0);
    const clients = await Promise.all(Array.from({ length: perIp }, (_, i) => RoccoClient.init(p, `full${i}`)));
    expect(await errorThenClose(await RoccoClient.open(p))).toBe(BUSY);
    expect(stats(app)).toEqual({ connections: perIp, ids: perIp, admitted: perIp });
    expect(clock.pending).toBe(0);
    await endAll(app, clients.map(({ client }) => client));
    expect(await rejections(app, 'message_rate')).toBe(3 * 10);
    expect(await rejections(app, 'login_timeout')).toBe(3 * perIp);
    expect(await rejections(app, 'max_connections_per_ip')).toBe(4);
  });
});
