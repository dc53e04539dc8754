import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { port, startApp } from '../helpers/app.js';
import { raw, RoccoClient } from '../clients/rocco.js';

async function relay(overrides = {}) {
  const app = await startApp({ tcprelayPort: 0, ...overrides });
  return { app, port: port(app, 'tcprelay', 'tcp') };
}

const stats = (app: App) => app.front('tcprelay')!.stats();

async function talkBoth(sender: RoccoClient, slow: RoccoClient): Promise<void> {
  sender.message('slow', 'still there?');
  expect(await slow.next()).toMatchObject({ source: 'sender', payload: 'still there?' });
  slow.message('sender', 'yes');
  expect(await sender.next()).toMatchObject({ source: 'slow', payload: 'yes' });
}

describe('tcprelay INIT', () => {
  it('picks an opaque id for INIT without source', async () => {
    const { app, port: p } = await relay();
    const client = await RoccoClient.open(p);
    client.send({ payloadType: 'INIT' });
    const text = await client.nextText();
    const id = (JSON.parse(text) as { destination: string }).destination;
    expect(id.length).toBeGreaterThan(8);
    expect(text).toBe(JSON.stringify({ payloadType: 'INIT', destination: id }));
    const other = await RoccoClient.init(p);
    expect(other.id).not.toBe(id);
    expect(stats(app)).toEqual({ connections: 2, ids: 2, admitted: 2 });
  });

  it('takes the requested id and accepts the README form with explicit nulls', async () => {
    const { port: p } = await relay();
    const client = await RoccoClient.open(p);
    client.send('{"payloadType":"INIT","source":"alice","destination":null,"payloadContent":null}');
    expect(await client.nextText()).toBe('{"payloadType":"INIT","destination":"alice"}');
    const anon = await RoccoClient.open(p);
    anon.send('{"payloadType":"INIT","source":null,"destination":null,"payload":null,"extra":[1]}');
    expect((await anon.next()).payloadType).toBe('INIT');
  });

  it('answers a taken id with an ERROR on the new connection; the holder is unaffected', async () => {
    const { port: p } = await relay();
    const { client: alice } = await RoccoClient.init(p, 'alice');
    const intruder = await RoccoClient.open(p);
    intruder.send({ payloadType: 'INIT', source: 'alice' });
    expect(await intruder.nextText()).toBe(
      '{"payloadType":"ERROR","destination":"alice","payload":"ClientId: alice is already initialized"}',
    );
    const { client: bob } = await RoccoClient.init(p, 'bob');
    bob.message('alice', 'still you?');
    expect(await alice.next()).toEqual({ payloadType: 'MESSAGE', source: 'bob', destination: 'alice', payload: 'still you?' });
    // The intruder's connection stays and can take another id.
    expect(await intruder.init('mallory')).toBe('mallory');
  });

  it('re-INIT under a new id releases the old one', async () => {
    const { app, port: p } = await relay();
    const { client } = await RoccoClient.init(p, 'old');
    expect(await client.init('new')).toBe('new');
    expect(stats(app)).toEqual({ connections: 1, ids: 1, admitted: 1 });
    const { client: other } = await RoccoClient.init(p, 'old');
    other.message('new', 'hi');
    expect(await client.next()).toMatchObject({ source: 'old', payload: 'hi' });
    // Re-INIT with the id it already holds just confirms it.
    expect(await client.init('new')).toBe('new');
  });

  it('CLOSE frees the id and keeps the connection; a later disconnect does not remove the new holder', async () => {
    const { app, port: p } = await relay();
    const { client: first } = await RoccoClient.init(p, 'shared');
    first.send({ payloadType: 'CLOSE', source: null, destination: null, payloadContent: null });
    const { client: second } = await RoccoClient.init(p, 'shared');
    expect(first.unread).toBe(0);
    // The first connection is still usable after CLOSE.
    expect(await first.init('first-again')).toBe('first-again');
    await first.end();
    const { client: sender } = await RoccoClient.init(p, 'sender');
    sender.message('shared', 'to the new holder');
    expect(await second.next()).toMatchObject({ payloadType: 'MESSAGE', payload: 'to the new holder' });
    await expect.poll(() => stats(app)).toEqual({ connections: 2, ids: 2, admitted: 2 });
  });

  it('CLOSE before INIT is ignored', async () => {
    const { port: p } = await relay();
    const client = await RoccoClient.open(p);
    client.send({ payloadType: 'CLOSE' });
    expect(await client.init('x')).toBe('x');
  });
});

describe('tcprelay routing', () => {
  it('delivers MESSAGE with the source stamped by the server', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    a.send({ payloadType: 'MESSAGE', source: 'b', destination: 'b', payload: 'hello', unknown: 1 });
    expect(await b.nextText()).toBe('{"payloadType":"MESSAGE","source":"a","destination":"b","payload":"hello"}');
    a.send({ payloadType: 'MESSAGE', destination: 'b', payloadContent: 'via alias' });
    expect(await b.nextText()).toBe('{"payloadType":"MESSAGE","source":"a","destination":"b","payload":"via alias"}');
    a.send({ payloadType: 'MESSAGE', destination: 'b' });
    expect(await b.nextText()).toBe('{"payloadType":"MESSAGE","source":"a","destination":"b"}');
  });

  it('delivers payloads exactly as sent (no double escaping), of any size', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    const payloads = [
      'a"b',
      'back\\slash',
      '{"json":"inside","n":[1,2]}',
      'line\nbreak\ttab\u0000nul',
      'ünïcödé 🎮 \u2028',
      'x'.repeat(100 * 1024),
      '',
    ];
    for (const payload of payloads) a.message('b', payload);
    for (const payload of payloads) expect((await b.next()).payload).toBe(payload);
  });

  it('delivers ERROR frames like messages, omitting absent fields', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    a.send({ payloadType: 'ERROR', source: 'x', destination: 'b', payload: 'bad message' });
    a.send({ payloadType: 'ERROR', destination: 'b' });
    expect(await b.nextText()).toBe('{"payloadType":"ERROR","source":"a","destination":"b","payload":"bad message"}');
    expect(await b.nextText()).toBe('{"payloadType":"ERROR","source":"a","destination":"b"}');
  });

  it('answers an unknown destination with an ERROR to the sender', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    a.message('nobody', 'hello?');
    expect(await a.next()).toEqual({
      payloadType: 'ERROR',
      destination: 'a',
      payload: 'ClientId: nobody is not initialized',
    });
    a.send({ payloadType: 'MESSAGE', payload: 'where to?' });
    expect(await a.next()).toMatchObject({ payloadType: 'ERROR', destination: 'a' });
  });

  it('answers MESSAGE and ERROR before INIT with an ERROR and keeps the connection', async () => {
    const { port: p } = await relay();
    const { client: target } = await RoccoClient.init(p, 't');
    const early = await RoccoClient.open(p);
    early.send({ payloadType: 'MESSAGE', source: 't', destination: 't', payload: 'spoof' });
    early.send({ payloadType: 'ERROR', destination: 't' });
    const replies = await early.take(2);
    for (const reply of replies) expect(reply).toEqual({ payloadType: 'ERROR', payload: 'Not initialized: send INIT first' });
    expect(await early.init('e')).toBe('e');
    early.message('t', 'now ok');
    expect(await target.next()).toMatchObject({ source: 'e', payload: 'now ok' });
    expect(target.unread).toBe(0);
  });

  it('keeps order per sender and destination, 200 frames in one write', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    const frames = Array.from({ length: 200 }, (_, i) => raw({ payloadType: 'MESSAGE', destination: 'b', payload: `m${i}` }));
    a.write(Buffer.concat(frames));
    const got = await b.take(200);
    expect(got.map((f) => f.payload)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
  });

  it('reassembles frames split byte by byte', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    const bytes = Buffer.concat([
      raw({ payloadType: 'MESSAGE', destination: 'b', payload: 'split é 🎮' }),
      raw({ payloadType: 'MESSAGE', destination: 'b', payload: 'second' }),
    ]);
    a.socket.setNoDelay(true);
    for (const byte of bytes) {
      await new Promise<void>((resolve) => a.socket.write(Buffer.from([byte]), () => resolve()));
    }
    expect((await b.take(2)).map((f) => f.payload)).toEqual(['split é 🎮', 'second']);
  });

  it('relays a 1 MiB frame and does not drop frames over 4 KiB', async () => {
    const { port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    const envelope = JSON.stringify({ payloadType: 'MESSAGE', destination: 'b', payload: '' });
    const payload = 'p'.repeat(1024 * 1024 - Buffer.byteLength(envelope));
    const frame = raw({ payloadType: 'MESSAGE', destination: 'b', payload });
    expect(frame.length).toBe(4 + 1024 * 1024);
    a.write(frame);
    a.message('b', 'q'.repeat(5000));
    expect((await b.next()).payload).toBe(payload);
    expect((await b.next()).payload).toBe('q'.repeat(5000));
  });

  it('isolates clients: 20 pairs talking at once each get only their own frames', async () => {
    const { port: p } = await relay();
    const pairs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const left = await RoccoClient.init(p, `l${i}`);
        const right = await RoccoClient.init(p, `r${i}`);
        return { i, left: left.client, right: right.client };
      }),
    );
    for (const { i, left } of pairs) for (let k = 0; k < 10; k++) left.message(`r${i}`, `${i}:${k}`);
    for (const { i, right, left } of pairs) {
      const got = await right.take(10);
      expect(got.map((f) => f.payload)).toEqual(Array.from({ length: 10 }, (_, k) => `${i}:${k}`));
      expect(got.every((f) => f.source === `l${i}`)).toBe(true);
      expect(left.unread).toBe(0);
    }
  });
});

describe('tcprelay bad input', () => {
  const header = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const cases: Array<[string, Buffer]> = [
    ['invalid JSON', raw('{"payloadType":')],
    ['not an object', raw('["INIT"]')],
    ['a JSON string', raw('"INIT"')],
    ['a numeric payloadType', raw('{"payloadType":1}')],
    ['an unknown payloadType', raw('{"payloadType":"HELLO"}')],
    ['a lowercase payloadType', raw('{"payloadType":"message","destination":"x"}')],
    ['no payloadType', raw('{"destination":"x"}')],
    ['a numeric destination', raw('{"payloadType":"MESSAGE","destination":5}')],
    ['an object payload', raw('{"payloadType":"MESSAGE","destination":"x","payload":{"a":1}}')],
    ['invalid UTF-8', Buffer.concat([header(3), Buffer.from([0x22, 0xc3, 0x28])])],
    ['a zero length', header(0)],
    ['a negative length', header(-5)],
    ['a length over the limit (header only)', header(1024 * 1024 + 1)],
  ];

  it.each(cases)('closes only the connection that sends %s and frees its id', async (_what, bytes) => {
    const { app, port: p } = await relay();
    const { client: bad } = await RoccoClient.init(p, 'bad');
    const { client: good } = await RoccoClient.init(p, 'good');
    bad.message('good', 'before');
    bad.write(bytes);
    await bad.closed;
    expect(await good.next()).toMatchObject({ payload: 'before' });
    // The id is free at once for someone else.
    const { client: again } = await RoccoClient.init(p, 'bad');
    good.message('bad', 'hi');
    expect(await again.next()).toMatchObject({ source: 'good', payload: 'hi' });
    expect(stats(app)).toEqual({ connections: 2, ids: 2, admitted: 2 });
  });

  it('refuses an oversize frame from its header, without waiting for the body', async () => {
    const { port: p } = await relay({ tcprelayMaxFrameSize: 1000 });
    const client = await RoccoClient.open(p);
    client.write(Buffer.from([0, 0, 0x03, 0xe9]));
    await client.closed;
    const ok = await RoccoClient.open(p);
    ok.write(raw({ payloadType: 'INIT', source: 'x'.repeat(950) }));
    expect((await ok.next()).payloadType).toBe('INIT');
  });

  it('pauses a sender while its receiver cannot keep up, and never disconnects the receiver for it', async () => {
    // 26 MB at once: past the per-connection and per-source byte budgets, lifted here.
    const lifted = { byteBurst: 64 * 1024 * 1024, sourceByteBurst: 64 * 1024 * 1024 };
    const { app, port: p } = await relay({ tcprelaySendBuffer: 1024 * 1024, ...lifted });
    const { client: sender } = await RoccoClient.init(p, 'sender');
    const { client: slow } = await RoccoClient.init(p, 'slow');
    slow.socket.pause();
    const frame = raw({ payloadType: 'MESSAGE', destination: 'slow', payload: 'z'.repeat(64 * 1024) });
    sender.write(Buffer.concat(Array.from({ length: 400 }, () => frame)));
    const limit = async (reason: string) =>
      ((await app.metrics.getSingleMetric('noray_limit_rejections_total')!.get()).values.find(
        (v) => v.labels.front === 'tcprelay' && v.labels.reason === reason,
      )?.value ?? 0);
    await expect.poll(() => limit('backpressure'), { timeout: 5000 }).toBeGreaterThan(0);
    // Reading again, the receiver gets every frame: the sender was slowed, nobody was cut.
    slow.socket.resume();
    const received = await slow.take(400);
    expect(received.every((m) => m.source === 'sender')).toBe(true);
    expect(stats(app)).toMatchObject({ ids: 2, connections: 2 });
    await talkBoth(sender, slow);
    const closes = await app.metrics.getSingleMetric('noray_tcprelay_closes_total')!.get();
    expect(closes.values.filter((v) => v.labels.reason === 'slow_reader' || v.labels.reason === 'sender_cut')).toEqual([]);
  });

  it('stops cleanly with connections open', async () => {
    const { app, port: p } = await relay();
    const { client } = await RoccoClient.init(p, 'a');
    const idle = await RoccoClient.open(p);
    idle.write(Buffer.from([0, 0]));
    await app.stop();
    await Promise.all([client.closed, idle.closed]);
    await expect.poll(() => stats(app)).toEqual({ connections: 0, ids: 0, admitted: 0 });
  });

  it('exports metrics', async () => {
    const { app, port: p } = await relay();
    const { client: a } = await RoccoClient.init(p, 'a');
    const { client: b } = await RoccoClient.init(p, 'b');
    a.message('b', 'x');
    await b.next();
    a.message('c', 'x');
    await a.next();
    const text = await app.metrics.metrics();
    expect(text).toContain('noray_tcprelay_connections 2');
    expect(text).toContain('noray_tcprelay_ids 2');
    expect(text).toContain('noray_tcprelay_frames_relayed_total{type="MESSAGE"} 1');
    expect(text).toContain('noray_tcprelay_frames_rejected_total{reason="unknown_destination"} 1');
  });
});
