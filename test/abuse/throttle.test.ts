// One source's many connections share one read budget per front (NORAY_SOURCE_*): past it their
// reading pauses until the debt is repaid, nobody is closed, and other sources are served at once.
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { SourceThrottle } from '../../src/core/limits/source-throttle.js';
import { raw } from '../clients/rocco.js';
import { WsPeer } from '../clients/carparty.js';
import { port, startApp } from '../helpers/app.js';
import { rejections } from '../helpers/metrics.js';

const onLinux = process.platform === 'linux';
const RATE = 200;
const BURST = 50;
const CONNECTIONS = 20;
const PER_CONNECTION = 500;
const SMALL = { sourceMessageRate: RATE, sourceMessageBurst: BURST };

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function tcp(p: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: p, host: '127.0.0.1', localAddress });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Counts what arrives on a socket, by a splitter that returns how many items a chunk completed. */
class Arrivals {
  readonly times: number[] = [];
  closed = false;

  constructor(socket: Socket, split: (chunk: Buffer) => number) {
    socket.on('data', (chunk: Buffer) => {
      const now = performance.now();
      for (let i = split(chunk); i > 0; i--) this.times.push(now);
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  /** Items that arrived in [from, to) (performance.now() times). */
  between(from: number, to: number): number {
    return this.times.filter((t) => t >= from && t < to).length;
  }
}

const lineSplitter = () => (chunk: Buffer) => chunk.reduce((n, byte) => n + (byte === 10 ? 1 : 0), 0);

/** Counts length-prefixed frames across chunks. */
function frameSplitter(): (chunk: Buffer) => number {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    let count = 0;
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      pending = pending.subarray(4 + pending.readInt32BE(0));
      count++;
    }
    return count;
  };
}

/** Items per second over one second, starting half a second into the flood (past the burst). */
async function ratePerSecond(count: (from: number, to: number) => number): Promise<number> {
  const from = performance.now() + 500;
  await sleep(1600);
  return count(from, from + 1000);
}

function expectNearRate(measured: number): void {
  // The source's rate, give or take timer granularity and a loaded machine.
  expect(measured).toBeGreaterThan(RATE * 0.5);
  expect(measured).toBeLessThan(RATE * 1.6);
}

describe.runIf(onLinux)('per-source read budget over real sockets', () => {
  it('noray: 20 connections of one source flooding echo get about the source rate together; another source is answered at once; nobody is closed', async () => {
    const app = await startApp({ socketPort: 0, ...SMALL });
    const p = port(app, 'noray', 'control');
    const flooders = await Promise.all(Array.from({ length: CONNECTIONS }, () => tcp(p)));
    const replies = flooders.map((socket) => new Arrivals(socket, lineSplitter()));
    for (const socket of flooders) socket.write('echo flood\n'.repeat(PER_CONNECTION));
    const total = (from: number, to: number) => replies.reduce((n, r) => n + r.between(from, to), 0);
    const measured = await ratePerSecond(total);
    expectNearRate(measured);

    const other = await tcp(p, '127.0.0.2');
    const otherReplies = new Arrivals(other, lineSplitter());
    const sent = performance.now();
    other.write('echo hello\n');
    await expect.poll(() => otherReplies.times.length, { timeout: 2000, interval: 5 }).toBe(1);
    expect((otherReplies.times[0] ?? Infinity) - sent).toBeLessThan(100);

    expect(replies.some((r) => r.closed)).toBe(false);
    expect(app.front('noray')!.stats()).toMatchObject({ connections: CONNECTIONS + 1 });
    expect(await rejections(app.metrics, 'noray', 'source_rate')).toBeGreaterThan(0);
    expect(await rejections(app.metrics, 'noray', 'message_rate')).toBe(0);
    for (const socket of [...flooders, other]) socket.destroy();
  });

  it('tcprelay: 20 connections of one source flooding frames get about the source rate together; another source INITs at once; nobody is closed', async () => {
    const app = await startApp({ tcprelayPort: 0, ...SMALL });
    const p = port(app, 'tcprelay', 'tcp');
    const sink = await tcp(p, '127.0.0.3');
    const delivered = new Arrivals(sink, frameSplitter());
    sink.write(raw({ payloadType: 'INIT', source: 'sink' }));
    await expect.poll(() => delivered.times.length).toBe(1);
    const flooders = await Promise.all(Array.from({ length: CONNECTIONS }, () => tcp(p)));
    const answers = flooders.map((socket) => new Arrivals(socket, frameSplitter()));
    flooders.forEach((socket, i) => socket.write(raw({ payloadType: 'INIT', source: `f${i}` })));
    await expect.poll(() => answers.every((a) => a.times.length === 1), { timeout: 5000 }).toBe(true);
    await sleep(300); // the INITs' debt is repaid
    const frame = raw({ payloadType: 'MESSAGE', destination: 'sink', payload: 'flood' });
    for (const socket of flooders) socket.write(Buffer.concat(Array.from({ length: PER_CONNECTION }, () => frame)));
    const measured = await ratePerSecond((from, to) => delivered.between(from, to));
    expectNearRate(measured);

    const other = await tcp(p, '127.0.0.2');
    const otherAnswers = new Arrivals(other, frameSplitter());
    const sent = performance.now();
    other.write(raw({ payloadType: 'INIT', source: 'probe' }));
    await expect.poll(() => otherAnswers.times.length, { timeout: 2000, interval: 5 }).toBe(1);
    expect((otherAnswers.times[0] ?? Infinity) - sent).toBeLessThan(100);

    expect(answers.some((a) => a.closed) || delivered.closed).toBe(false);
    expect(app.front('tcprelay')!.stats()).toMatchObject({ connections: CONNECTIONS + 2 });
    expect(await rejections(app.metrics, 'tcprelay', 'source_rate')).toBeGreaterThan(0);
    for (const socket of [...flooders, sink, other]) socket.destroy();
  });

  it('tcprelay: a big frame from a source in debt waits before its body is read; the per-connection byte rate closes with ERROR', async () => {
    const app = await startApp({ tcprelayPort: 0, sourceByteRate: 100_000, sourceByteBurst: 200_000, byteBurst: 10_000_000 });
    const p = port(app, 'tcprelay', 'tcp');
    const sink = await tcp(p, '127.0.0.3');
    const delivered = new Arrivals(sink, frameSplitter());
    sink.write(raw({ payloadType: 'INIT', source: 'sink' }));
    await expect.poll(() => delivered.times.length).toBe(1);
    const sender = await tcp(p);
    const answers = new Arrivals(sender, frameSplitter());
    sender.write(raw({ payloadType: 'INIT', source: 'big' }));
    await expect.poll(() => answers.times.length).toBe(1);
    // 400 kB at once past a 200 kB burst: the third frame puts the source 100 kB in debt, the fourth waits about 1 s.
    const frame = raw({ payloadType: 'MESSAGE', destination: 'sink', payload: 'x'.repeat(100_000) });
    const started = performance.now();
    sender.write(Buffer.concat([frame, frame, frame, frame]));
    await expect.poll(() => delivered.times.length, { timeout: 5000 }).toBe(5);
    expect((delivered.times[4] ?? 0) - started).toBeGreaterThan(700);
    expect(answers.closed).toBe(false);
    expect(await rejections(app.metrics, 'tcprelay', 'source_rate')).toBeGreaterThan(0);

    const small = await startApp({ tcprelayPort: 0, byteRate: 1000, byteBurst: 150_000 });
    const q = port(small, 'tcprelay', 'tcp');
    const cut = await tcp(q);
    const got: Buffer[] = [];
    cut.on('data', (chunk: Buffer) => got.push(chunk));
    const closed = new Promise<void>((done) => cut.on('close', () => done()));
    cut.write(raw({ payloadType: 'INIT', source: 'cut' }));
    cut.write(Buffer.concat([frame, frame]));
    await closed;
    expect(Buffer.concat(got).toString('utf8')).toContain('Too many bytes: slow down');
    expect(await rejections(small.metrics, 'tcprelay', 'byte_rate')).toBe(1);
  });

  it('wsrelay: 20 phones of one source flooding messages get about the source rate together; another source is relayed at once; nobody is closed', async () => {
    const app = await startApp({ wsrelayPort: 0, ...SMALL });
    const p = port(app, 'wsrelay', 'ws');
    const server = await WsPeer.open(p, '/', { localAddress: '127.0.0.3' });
    const arrivals: { at: number; text: string }[] = [];
    server.ws.on('message', (data: Buffer) => arrivals.push({ at: performance.now(), text: data.toString('utf8') }));
    server.send({ action: 'login_server', server_code: 'ROOM' });
    await sleep(100);
    const phones = await Promise.all(Array.from({ length: CONNECTIONS }, () => WsPeer.open(p, '/', { localAddress: '127.0.0.1' })));
    const closes: number[] = [];
    for (const phone of phones) phone.ws.on('close', (code: number) => closes.push(code));
    phones.forEach((phone, i) => phone.send({ action: 'login_client', server_code: 'ROOM', client_id: `p${i}` }));
    await expect.poll(() => arrivals.length, { timeout: 5000 }).toBe(CONNECTIONS);
    await sleep(300);
    for (const phone of phones) for (let i = 0; i < PER_CONNECTION; i++) phone.send({ n: i });
    const measured = await ratePerSecond((from, to) => arrivals.filter((a) => a.at >= from && a.at < to).length);
    expectNearRate(measured);

    const probe = await WsPeer.open(p, '/', { localAddress: '127.0.0.2' });
    const sent = performance.now();
    probe.send({ action: 'login_client', server_code: 'ROOM', client_id: 'probe' });
    probe.send({ hello: true });
    const hello = () => arrivals.find((a) => a.text.includes('"hello"'));
    await expect.poll(() => hello() !== undefined, { timeout: 2000, interval: 5 }).toBe(true);
    expect((hello()?.at ?? Infinity) - sent).toBeLessThan(100);

    expect(closes).toEqual([]);
    expect(await rejections(app.metrics, 'wsrelay', 'source_rate')).toBeGreaterThan(0);
    for (const peer of [...phones, probe, server]) peer.ws.terminate();
  });
});

describe('SourceThrottle', () => {
  it('admits nothing while in debt, resumes its waiting connections in turn once repaid, and keeps its map bounded', () => {
    const clock = new ManualClock();
    const throttle = new SourceThrottle({ messageRate: 10, messageBurst: 2, byteRate: 1e9, byteBurst: 1e9, clock, maxSources: 3 });
    const served: string[] = [];
    const conn = (name: string) => {
      const self = {
        resume: () => {
          while (throttle.admit('a', self, 1)) served.push(name);
        },
      };
      return self;
    };
    const [x, y] = [conn('x'), conn('y')];
    expect(throttle.admit('a', x, 1)).toBe(true);
    expect(throttle.admit('a', x, 1)).toBe(true);
    expect(throttle.admit('a', x, 1)).toBe(true); // into debt by one
    expect(throttle.admit('a', x, 1)).toBe(false);
    expect(throttle.admit('a', y, 1)).toBe(false);
    expect(throttle.waiting).toBe(2);
    clock.advance(100); // the debt of 1 is repaid: x is served first, then y's turn comes
    expect(served).toEqual(['x']);
    clock.advance(100);
    expect(served).toEqual(['x', 'y']);
    clock.advance(100);
    expect(served).toEqual(['x', 'y', 'x']);
    throttle.forget('a', x);
    throttle.forget('a', y);
    for (const source of ['b', 'c', 'd', 'e']) throttle.admit(source, conn(source), 1);
    expect(throttle.size).toBeLessThanOrEqual(3);
  });
});
