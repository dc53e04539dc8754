// Abuse over real sockets: flooding a receiver to get it closed and take its id, taking a freed id
// from another IP, guessing ids. Each attack fails, well-behaved clients are unaffected, counted.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { port, startApp } from '../helpers/app.js';
import { rejections, sampleOf } from '../helpers/metrics.js';
import { raw, RoccoClient } from '../clients/rocco.js';

async function relay(overrides: Partial<Config>, clock = new ManualClock()) {
  const app = await startApp({ tcprelayPort: 0, ...overrides }, { clock });
  return { app, port: port(app, 'tcprelay', 'tcp'), clock };
}

const limit = (app: App, reason: string) => rejections(app.metrics, 'tcprelay', reason);
const stats = (app: App) => app.front('tcprelay')!.stats();

/** INIT from another loopback address (another IP): the first frame's JSON text, then the socket ends. */
function initFrom(localAddress: string, p: number, source: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: p, localAddress });
    let pending = Buffer.alloc(0);
    socket.on('connect', () => socket.write(raw({ payloadType: 'INIT', source })));
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 4 || pending.length < 4 + pending.readInt32BE(0)) return;
      resolve(pending.subarray(4, 4 + pending.readInt32BE(0)).toString('utf8'));
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('tcprelay abuse: flooding a receiver', () => {
  it('never closes a receiver for what others send: senders are paused or cut, its id stays its own', async () => {
    const { app, port: p } = await relay({ tcprelaySendBuffer: 256 * 1024, messageBurst: 100_000 });
    const { client: victim } = await RoccoClient.init(p, 'victim');
    victim.socket.pause();
    const big = raw({ payloadType: 'MESSAGE', destination: 'victim', payload: 'z'.repeat(512 * 1024) });
    const senders = await Promise.all(Array.from({ length: 6 }, (_, n) => RoccoClient.init(p, `flood-${n}`)));
    for (const { client } of senders) client.write(Buffer.concat(Array.from({ length: 8 }, () => big)));
    await expect.poll(() => limit(app, 'backpressure'), { timeout: 10_000 }).toBeGreaterThan(0);
    // The victim still holds its id: an attacker cannot INIT it.
    const thief = await RoccoClient.open(p);
    thief.send({ payloadType: 'INIT', source: 'victim' });
    expect(await thief.next()).toMatchObject({ payloadType: 'ERROR', payload: 'ClientId: victim is already initialized' });
    expect(await sampleOf(app.metrics, 'noray_tcprelay_closes_total', { reason: 'slow_reader' })).toBe(0);
    // Reading again, it is served; its own traffic goes both ways.
    victim.socket.resume();
    const { client: friend } = await RoccoClient.init(p, 'friend');
    friend.message('victim', 'hello');
    for (;;) {
      const got = await victim.next();
      if (got.source === 'friend') break;
    }
    victim.message('friend', 'hi');
    expect(await friend.next()).toMatchObject({ source: 'victim', payload: 'hi' });
  });
});

describe('tcprelay abuse: taking a freed id', () => {
  it('keeps an id freed by a disconnect for its source IP; another IP waits, the same IP takes it back', async () => {
    const { app, port: p, clock } = await relay({ tcprelayIdReservation: 30_000 });
    const { client: owner } = await RoccoClient.init(p, 'mine');
    await owner.end();
    await expect.poll(() => stats(app).ids).toBe(0);
    expect(JSON.parse(await initFrom('127.0.0.2', p, 'mine'))).toMatchObject({ payloadType: 'ERROR', payload: 'ClientId: mine is already initialized' });
    expect(await limit(app, 'id_reserved')).toBe(1);
    expect(JSON.parse(await initFrom('127.0.0.1', p, 'mine'))).toEqual({ payloadType: 'INIT', destination: 'mine' });
    await expect.poll(() => stats(app).ids).toBe(0);
    // After the grace period anyone may take it.
    clock.advance(30_001);
    expect(JSON.parse(await initFrom('127.0.0.2', p, 'mine'))).toEqual({ payloadType: 'INIT', destination: 'mine' });
  });
});

describe('tcprelay abuse: guessing ids', () => {
  it('withholds the answers past the guess rate of one IP, counted; live destinations are still served', async () => {
    const { app, port: p } = await relay({ tcprelayGuessBurst: 5 });
    const { client: guesser } = await RoccoClient.init(p, 'guesser');
    const { client: live } = await RoccoClient.init(p, 'live');
    for (let n = 0; n < 20; n++) guesser.message(`nobody-${n}`, 'x');
    await expect.poll(() => limit(app, 'guess_rate')).toBe(15);
    expect(guesser.frames.filter((text) => text.includes('is not initialized'))).toHaveLength(5);
    // Failed INITs count too: the taken id gets no answer now.
    const again = await RoccoClient.open(p);
    again.send({ payloadType: 'INIT', source: 'live' });
    await expect.poll(() => limit(app, 'guess_rate')).toBe(16);
    guesser.message('live', 'real');
    expect(await live.next()).toMatchObject({ source: 'guesser', payload: 'real' });
  });
});
