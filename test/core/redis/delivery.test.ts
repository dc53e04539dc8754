// RedisDelivery over a real Redis: nodes are RedisDelivery instances, each with its own publisher
// and subscriber client, sharing one prefix and space.
import { describe, expect, it } from 'vitest';
import type { MessageCodec } from '../../../src/core/delivery.js';
import { deliveryChannel, encodeFrame, RedisDelivery } from '../../../src/core/redis/delivery.js';
import type { RedisClient } from '../../../src/core/redis/script.js';
import { uniquePrefix, useRedis } from '../../helpers/redis.js';

const redis = useRedis();

const strict = new TextDecoder('utf-8', { fatal: true });
/** Strings as UTF-8; bytes that are not UTF-8 fail to decode. */
const textCodec: MessageCodec<string> = {
  encode: (message) => Buffer.from(message, 'utf8'),
  decode: (bytes) => strict.decode(bytes),
};
const bufferCodec: MessageCodec<Buffer> = {
  encode: (message) => message,
  decode: (bytes) => Buffer.from(bytes),
};

const SPACE = 'wsrelay';

async function waitFor(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface TestNode<M> {
  readonly id: string;
  readonly delivery: RedisDelivery<M>;
  readonly publisher: RedisClient;
  readonly errors: Error[];
}

async function nodes<M>(count: number, codec: MessageCodec<M>, alive?: (nodeId: string) => boolean): Promise<{ prefix: string; nodes: TestNode<M>[] }> {
  const prefix = uniquePrefix('delivery');
  const out: TestNode<M>[] = [];
  for (let i = 0; i < count; i++) {
    const publisher = await redis.newClient();
    const subscriber = await redis.newClient();
    const errors: Error[] = [];
    const id = `node-${i}`;
    const delivery = new RedisDelivery<M>({
      publisher,
      subscriber,
      prefix,
      space: SPACE,
      nodeId: id,
      codec,
      ...(alive === undefined ? {} : { nodeAlive: alive }),
      onError: (error) => errors.push(error),
    });
    await delivery.start();
    out.push({ id, delivery, publisher, errors });
  }
  return { prefix, nodes: out };
}

describe.runIf(redis.available)('RedisDelivery', () => {
  it('hands a local recipient its message synchronously, and refuses unattached and invalid ids', async () => {
    const { nodes: [a] } = await nodes(1, textCodec);
    const got: string[] = [];
    const inbox = (m: string) => got.push(m);
    a!.delivery.attach('node-0/x', inbox);
    expect(a!.delivery.deliver('node-0/x', 'hello')).toBe(true);
    expect(got).toEqual(['hello']);
    expect(a!.delivery.deliver('node-0/y', 'nobody')).toBe(false);
    expect(a!.delivery.deliver('no-slash', 'm')).toBe(false);
    expect(a!.delivery.deliver('/x', 'm')).toBe(false);
    expect(a!.delivery.deliver('bad node!/x', 'm')).toBe(false);
    expect(a!.delivery.deliver(`${'n'.repeat(65)}/x`, 'm')).toBe(false);
    // a replaced inbox is not removed by the old one's detach
    const other = (m: string) => got.push(`other:${m}`);
    a!.delivery.attach('node-0/x', other);
    a!.delivery.detach('node-0/x', inbox);
    expect(a!.delivery.deliver('node-0/x', 'again')).toBe(true);
    expect(got).toEqual(['hello', 'other:again']);
    a!.delivery.detach('node-0/x', other);
    expect(a!.delivery.deliver('node-0/x', 'gone')).toBe(false);
    expect(a!.delivery.size).toBe(0);
  });

  it('delivers to a recipient on another node', async () => {
    const { nodes: [a, b] } = await nodes(2, textCodec);
    const got: string[] = [];
    b!.delivery.attach('node-1/conn', (m) => got.push(m));
    expect(a!.delivery.deliver('node-1/conn', 'über ✓')).toBe(true);
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['über ✓']);
    expect(a!.errors).toEqual([]);
  });

  it('keeps per-sender order for 10,000 messages interleaved from two sender nodes', async () => {
    const { nodes: [a, b, c] } = await nodes(3, textCodec);
    const got: string[] = [];
    c!.delivery.attach('node-2/target', (m) => got.push(m));
    const COUNT = 10_000;
    for (let i = 0; i < COUNT; i++) {
      expect(a!.delivery.deliver('node-2/target', `a:${i}`)).toBe(true);
      expect(b!.delivery.deliver('node-2/target', `b:${i}`)).toBe(true);
    }
    await waitFor(() => got.length === 2 * COUNT, 15_000);
    for (const sender of ['a', 'b']) {
      const seq = got.filter((m) => m.startsWith(`${sender}:`)).map((m) => Number(m.slice(2)));
      expect(seq).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    }
    expect(c!.delivery.dropped).toBe(0);
  });

  it('drops and counts messages for a recipient detached meanwhile', async () => {
    const { nodes: [a, b] } = await nodes(2, textCodec);
    const got: string[] = [];
    const inbox = (m: string) => got.push(m);
    b!.delivery.attach('node-1/conn', inbox);
    a!.delivery.deliver('node-1/conn', 'first');
    await waitFor(() => got.length === 1);
    b!.delivery.detach('node-1/conn', inbox);
    expect(a!.delivery.deliver('node-1/conn', 'late-1')).toBe(true); // sent: a cannot know
    expect(a!.delivery.deliver('node-1/conn', 'late-2')).toBe(true);
    await waitFor(() => b!.delivery.dropped === 2);
    expect(got).toEqual(['first']);
  });

  it('returns false for a node that nodeAlive says is dead, without publishing', async () => {
    const dead = new Set(['node-1']);
    const { prefix, nodes: [a, b] } = await nodes(2, textCodec, (id) => !dead.has(id));
    const got: string[] = [];
    b!.delivery.attach('node-1/conn', (m) => got.push(m));
    const spy = await redis.newClient();
    const seen: Buffer[] = [];
    await spy.subscribe(deliveryChannel(prefix, SPACE, 'node-1'), (frame) => seen.push(frame), true);
    expect(a!.delivery.deliver('node-1/conn', 'to the dead')).toBe(false);
    expect(a!.delivery.deliver('node-9/conn', 'unknown node is alive to this predicate')).toBe(true);
    dead.delete('node-1');
    expect(a!.delivery.deliver('node-1/conn', 'alive again')).toBe(true);
    await waitFor(() => got.length === 1 && seen.length === 1);
    expect(got).toEqual(['alive again']);
  });

  it('drops and counts malformed frames published by hand, and keeps receiving', async () => {
    const { prefix, nodes: [, b] } = await nodes(2, textCodec);
    const got: string[] = [];
    b!.delivery.attach('node-1/conn', (m) => got.push(m));
    const channel = deliveryChannel(prefix, SPACE, 'node-1');
    const hand = redis.client();
    const tooLong = Buffer.alloc(8);
    tooLong.writeUInt32BE(1_000, 0);
    const malformed = [
      Buffer.alloc(0),
      Buffer.from([0, 0]),
      Buffer.from([0, 0, 0, 0, 1, 2]), // empty recipient
      tooLong,
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      encodeFrame('node-1/conn', Buffer.from([0xc3, 0x28])), // not UTF-8: the codec throws
      Buffer.from('plain text, not a frame'),
    ];
    for (const frame of malformed) await hand.publish(channel, frame);
    await hand.publish(channel, encodeFrame('node-1/conn', Buffer.from('valid')));
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['valid']);
    expect(b!.delivery.dropped).toBe(malformed.length);
    expect(b!.errors).toEqual([]);
  });

  it('carries Buffer payloads with arbitrary bytes intact', async () => {
    const { nodes: [a, b] } = await nodes(2, bufferCodec);
    const got: Buffer[] = [];
    b!.delivery.attach('node-1/bytes', (m) => got.push(m));
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const payloads = [all, Buffer.alloc(0), Buffer.from([0, 0, 0, 0]), Buffer.from('\r\n$-1\r\n*3\r\n', 'latin1'), Buffer.alloc(100_000, 0xab)];
    for (const p of payloads) a!.delivery.deliver('node-1/bytes', p);
    await waitFor(() => got.length === payloads.length);
    got.forEach((g, i) => expect(g.equals(payloads[i]!)).toBe(true));
  });

  it('lets several deliveries share a subscriber, and stop() removes only its own listener', async () => {
    const prefix = uniquePrefix('delivery');
    const subscriber = await redis.newClient();
    const publisher = await redis.newClient();
    const make = (space: string, nodeId: string, pub: RedisClient, sub: RedisClient) =>
      new RedisDelivery<string>({ publisher: pub, subscriber: sub, prefix, space, nodeId, codec: textCodec, onError: () => undefined });
    const x = make('one', 'n1', publisher, subscriber);
    const y = make('two', 'n1', publisher, subscriber);
    await x.start();
    await y.start();
    const sender = await redis.newClient();
    const sendOne = make('one', 'n0', sender, sender);
    const sendTwo = make('two', 'n0', sender, sender);
    const got: string[] = [];
    x.attach('n1/c', (m) => got.push(`one:${m}`));
    y.attach('n1/c', (m) => got.push(`two:${m}`));
    sendOne.deliver('n1/c', 'a');
    sendTwo.deliver('n1/c', 'b');
    await waitFor(() => got.length === 2);
    expect(got.sort()).toEqual(['one:a', 'two:b']);
    await x.stop();
    sendOne.deliver('n1/c', 'after stop');
    sendTwo.deliver('n1/c', 'c');
    await waitFor(() => got.length === 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got.sort()).toEqual(['one:a', 'two:b', 'two:c']);
  });

  it('reports a failed publish to onError instead of rejecting', async () => {
    const publisher = await redis.newClient();
    const subscriber = await redis.newClient();
    const errors: Error[] = [];
    const d = new RedisDelivery<string>({
      publisher,
      subscriber,
      prefix: uniquePrefix('delivery'),
      space: SPACE,
      nodeId: 'n0',
      codec: textCodec,
      onError: (error) => errors.push(error),
    });
    publisher.destroy();
    expect(d.deliver('n1/c', 'into the void')).toBe(true);
    await waitFor(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(Error);
  });
});
