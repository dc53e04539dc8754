// Contract suites for the store seams: every implementation of an interface must pass the same
// suite. A second implementation (e.g. Redis) plugs in with one more line in the table.
import { describe, expect, it } from 'vitest';
import { MemoryAddressBook, type AddressBook } from '../../../src/core/address-book.js';
import { LocalDelivery } from '../../../src/core/delivery.js';
import { MemorySessionStore, type SessionRecord, type SessionStore } from '../../../src/core/directory.js';
import { RedisAddressBook } from '../../../src/core/redis/address-book.js';
import { RedisSessionStore } from '../../../src/core/redis/session-store.js';
import { SessionRegistrar } from '../../../src/core/session-registrar.js';
import { uniquePrefix, useRedis } from '../../helpers/redis.js';

interface TestSession extends SessionRecord {
  readonly name: string;
}

const session = (id: string, publicId: string, secret: string): TestSession => ({ id, publicId, secret, name: id });

// One redis-server for the file; every store made gets a prefix of its own, so tests never meet.
const redis = useRedis();

const sessionStores: Array<[string, () => SessionStore<TestSession>]> = [
  ['memory', () => new MemorySessionStore<TestSession>()],
  ...(redis.available
    ? [['redis', () => new RedisSessionStore<TestSession>(redis.client(), uniquePrefix('sessions'))] as [string, () => SessionStore<TestSession>]]
    : []),
];
const addressBooks: Array<[string, () => AddressBook]> = [
  ['memory', () => new MemoryAddressBook()],
  ...(redis.available ? [['redis', () => new RedisAddressBook(redis.client(), uniquePrefix('addresses'))] as [string, () => AddressBook]] : []),
];

describe.each(sessionStores)('SessionStore contract: %s', (_name, make) => {
  it('finds a claimed session by public id and by secret, in separate namespaces', async () => {
    const store = make();
    expect(await store.byPublicId('oid')).toBeUndefined();
    const a = session('s1', 'oid', 'pid');
    expect(await store.claim(a)).toBe(true);
    expect(await store.byPublicId('oid')).toEqual(a);
    expect(await store.bySecret('pid')).toEqual(a);
    expect(await store.byPublicId('pid')).toBeUndefined();
    expect(await store.bySecret('oid')).toBeUndefined();
  });

  it('refuses a claim whose public id or secret is taken, changing nothing', async () => {
    const store = make();
    const a = session('s1', 'oid', 'pid');
    await store.claim(a);
    expect(await store.claim(session('s2', 'oid', 'other'))).toBe(false);
    expect(await store.claim(session('s3', 'other', 'pid'))).toBe(false);
    expect(await store.bySecret('other')).toBeUndefined();
    expect(await store.byPublicId('other')).toBeUndefined();
    expect((await store.byPublicId('oid'))?.id).toBe('s1');
  });

  it('gives exactly one of many concurrent claims of one public id', async () => {
    const store = make();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.claim(session(`s${i}`, 'contested', `pid${i}`))),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect((await store.byPublicId('contested'))?.id).toBe(`s${winner}`);
  });

  it('releases only the very session, so a successor under the same public id stays', async () => {
    const store = make();
    const first = session('s1', 'oid', 'pid1');
    await store.claim(first);
    expect(await store.release(first)).toBe(true);
    expect(await store.release(first)).toBe(false);
    expect(await store.byPublicId('oid')).toBeUndefined();
    expect(await store.bySecret('pid1')).toBeUndefined();
    const second = session('s2', 'oid', 'pid2');
    expect(await store.claim(second)).toBe(true);
    expect(await store.release(first)).toBe(false);
    expect((await store.byPublicId('oid'))?.id).toBe('s2');
    expect((await store.bySecret('pid2'))?.id).toBe('s2');
  });
});

describe.each(addressBooks)('AddressBook contract: %s', (_name, make) => {
  it('records registered, then repeat, then moved with the previous endpoint; the latest wins', async () => {
    const book = make();
    expect(await book.endpointOf('s1')).toBeUndefined();
    expect(await book.record('s1', { address: '1.2.3.4', port: 5 })).toEqual({
      outcome: 'registered',
      endpoint: { address: '1.2.3.4', port: 5 },
    });
    expect(await book.record('s1', { address: '1.2.3.4', port: 5 })).toEqual({
      outcome: 'repeat',
      endpoint: { address: '1.2.3.4', port: 5 },
    });
    expect(await book.record('s1', { address: '1.2.3.4', port: 6 })).toEqual({
      outcome: 'moved',
      endpoint: { address: '1.2.3.4', port: 6 },
      previous: { address: '1.2.3.4', port: 5 },
    });
    expect(await book.endpointOf('s1')).toEqual({ address: '1.2.3.4', port: 6 });
  });

  it('keys by session id: sessions do not see each other, and forget removes one', async () => {
    const book = make();
    await book.record('s1', { address: '1.1.1.1', port: 1 });
    await book.record('s2', { address: '2.2.2.2', port: 2 });
    await book.forget('s1');
    await book.forget('never-recorded');
    expect(await book.endpointOf('s1')).toBeUndefined();
    expect(await book.endpointOf('s2')).toEqual({ address: '2.2.2.2', port: 2 });
  });

  it('does not keep a reference to the endpoint it was given', async () => {
    const book = make();
    const endpoint = { address: '1.1.1.1', port: 1 };
    await book.record('s1', endpoint);
    endpoint.port = 99;
    expect(await book.endpointOf('s1')).toEqual({ address: '1.1.1.1', port: 1 });
  });
});

describe.each(sessionStores.flatMap(([s, makeStore]) => addressBooks.map(([b, makeBook]) => [`${s} + ${b}`, makeStore, makeBook] as const)))(
  'SessionRegistrar over %s',
  (_name, makeStore, makeBook) => {
    it('records the endpoint of the session the secret names; unknown and empty secrets record nothing', async () => {
      const store = makeStore();
      const book = makeBook();
      const registrar = new SessionRegistrar(store, book);
      const a = session('s1', 'oid', 'pid');
      await store.claim(a);
      expect(await registrar.register('', { address: '1.1.1.1', port: 1 })).toEqual({ outcome: 'unknown' });
      expect(await registrar.register('nope', { address: '1.1.1.1', port: 1 })).toEqual({ outcome: 'unknown' });
      const result = await registrar.register('pid', { address: '1.1.1.1', port: 1 });
      expect(result.outcome).toBe('registered');
      expect(result.outcome !== 'unknown' && result.session.id).toBe('s1');
      expect(await book.endpointOf('s1')).toEqual({ address: '1.1.1.1', port: 1 });
    });
  },
);

describe('LocalDelivery', () => {
  it('delivers to the attached inbox in order, and reports recipients that are not connected', () => {
    const delivery = new LocalDelivery<string>();
    const got: string[] = [];
    const inbox = (message: string) => got.push(message);
    expect(delivery.deliver('c1', 'lost')).toBe(false);
    delivery.attach('c1', inbox);
    expect(delivery.deliver('c1', 'one')).toBe(true);
    expect(delivery.deliver('c1', 'two')).toBe(true);
    expect(got).toEqual(['one', 'two']);
  });

  it('detaches only the inbox still attached under the id', () => {
    const delivery = new LocalDelivery<string>();
    const old: string[] = [];
    const current: string[] = [];
    delivery.attach('c1', (m) => old.push(m));
    const replacing = (m: string) => current.push(m);
    delivery.attach('c1', replacing);
    delivery.detach('c1', (m) => old.push(m));
    delivery.deliver('c1', 'x');
    delivery.detach('c1', replacing);
    expect(delivery.deliver('c1', 'y')).toBe(false);
    expect(old).toEqual([]);
    expect(current).toEqual(['x']);
    expect(delivery.size).toBe(0);
  });
});
