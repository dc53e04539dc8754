// Contract suite for RoomStore: every implementation must pass it. A second implementation
// (e.g. Redis) plugs in with one more line in the table. Every call is awaited: a store may answer
// at once (memory) or with a promise (networked); "memory, answering with promises" checks that
// nothing here relies on the first.
import { describe, expect, it } from 'vitest';
import { MemoryRoomStore, type RoomStore } from '../../../src/core/room-store.js';
import { RedisRoomStore } from '../../../src/core/redis/room-store.js';
import { PromisedRoomStore } from '../../helpers/promised-room-store.js';
import { uniquePrefix, useRedis } from '../../helpers/redis.js';

// One redis-server for the file; every store made gets a prefix of its own, so tests never meet.
const redis = useRedis();

const roomStores: Array<[string, () => RoomStore]> = [
  ['memory', () => new MemoryRoomStore()],
  ['memory, answering with promises', () => new PromisedRoomStore()],
  ...(redis.available ? [['redis', () => new RedisRoomStore(redis.client(), uniquePrefix('rooms'))] as [string, () => RoomStore]] : []),
];

const UNIQUE = { uniqueIds: true };
const m = (connection: string, id: string) => ({ connection, id });
const sorted = async (ids: Iterable<string> | Promise<Iterable<string>>) => [...(await ids)].sort();

describe.each(roomStores)('RoomStore contract: %s', (_name, make) => {
  it('opens a room per code, claim-if-absent; codes are case-sensitive', async () => {
    const store = make();
    expect(await store.owner('SNEK')).toBeUndefined();
    expect(await store.open('SNEK', 'c-srv')).toBe('opened');
    expect(await store.open('SNEK', 'c-srv2')).toBe('taken');
    expect(await store.owner('SNEK')).toBe('c-srv');
    expect(await store.open('snek', 'c-srv3')).toBe('opened');
    expect(await store.counts()).toEqual({ rooms: 2, members: 0 });
  });

  it('refuses an open past maxRooms as full; a taken code stays taken', async () => {
    const store = make();
    expect(await store.open('A', 'c1', { maxRooms: 1 })).toBe('opened');
    expect(await store.open('B', 'c2', { maxRooms: 1 })).toBe('full');
    expect(await store.open('A', 'c3', { maxRooms: 1 })).toBe('taken');
    expect(await store.open('B', 'c2', { maxRooms: 2 })).toBe('opened');
    expect(await store.counts()).toEqual({ rooms: 2, members: 0 });
  });

  it('gives exactly one of many concurrent opens of one code', async () => {
    const store = make();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.open('contested', `c${i}`)));
    expect(results.filter((r) => r === 'opened')).toHaveLength(1);
    expect(results.filter((r) => r === 'taken')).toHaveLength(19);
    expect(await store.owner('contested')).toBe(`c${results.indexOf('opened')}`);
    expect(await store.counts()).toEqual({ rooms: 1, members: 0 });
  });

  it('joins only an open room; lists members by connection, not the owner; ids may repeat', async () => {
    const store = make();
    expect(await store.join('R', m('c1', 'a'))).toBe('closed');
    await store.open('R', 'c-srv');
    for (const [connection, id] of [['c1', 'a'], ['c2', 'a'], ['c3', 'b']] as const) {
      expect(await store.join('R', m(connection, id))).toBe('joined');
    }
    expect(await sorted(store.members('R'))).toEqual(['c1', 'c2', 'c3']);
    expect(await sorted(store.membersWithId('R', 'a'))).toEqual(['c1', 'c2']);
    expect(await sorted(store.membersWithId('R', 'b'))).toEqual(['c3']);
    expect(await sorted(store.membersWithId('R', 'zzz'))).toEqual([]);
    expect(await sorted(store.members('nope'))).toEqual([]);
    expect(await sorted(store.membersWithId('nope', 'a'))).toEqual([]);
    expect(await store.counts()).toEqual({ rooms: 1, members: 3 });
  });

  it('lists members in the order they joined', async () => {
    const store = make();
    await store.open('R', 'c-srv');
    for (const connection of ['c3', 'c1', 'c2']) await store.join('R', m(connection, 'x'));
    expect([...(await store.members('R'))]).toEqual(['c3', 'c1', 'c2']);
    expect([...(await store.membersWithId('R', 'x'))]).toEqual(['c3', 'c1', 'c2']);
  });

  it('refuses a second holder of a unique id, changing nothing; the holder may join again', async () => {
    const store = make();
    await store.open('dir', null);
    expect(await store.join('dir', m('c1', 'x'), UNIQUE)).toBe('joined');
    expect(await store.join('dir', m('c2', 'x'), UNIQUE)).toBe('id-taken');
    expect(await store.join('dir', m('c1', 'x'), UNIQUE)).toBe('joined');
    expect(await sorted(store.membersWithId('dir', 'x'))).toEqual(['c1']);
    expect(await store.counts()).toEqual({ rooms: 1, members: 1 });
  });

  it('gives exactly one of many concurrent joins of one unique id', async () => {
    const store = make();
    await store.open('dir', null);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.join('dir', m(`c${i}`, 'contested'), UNIQUE)),
    );
    expect(results.filter((r) => r === 'joined')).toHaveLength(1);
    expect(results.filter((r) => r === 'id-taken')).toHaveLength(19);
    expect(await sorted(store.membersWithId('dir', 'contested'))).toEqual([`c${results.indexOf('joined')}`]);
    expect(await store.counts()).toEqual({ rooms: 1, members: 1 });
  });

  it('moves a connection that joins again under another id; a refused move keeps its id', async () => {
    const store = make();
    await store.open('dir', null);
    await store.join('dir', m('c1', 'old'), UNIQUE);
    await store.join('dir', m('c2', 'taken'), UNIQUE);
    expect(await store.join('dir', m('c1', 'taken'), UNIQUE)).toBe('id-taken');
    expect(await sorted(store.membersWithId('dir', 'old'))).toEqual(['c1']);
    expect(await store.join('dir', m('c1', 'new'), UNIQUE)).toBe('joined');
    expect(await sorted(store.membersWithId('dir', 'old'))).toEqual([]);
    expect(await sorted(store.membersWithId('dir', 'new'))).toEqual(['c1']);
    expect(await sorted(store.members('dir'))).toEqual(['c1', 'c2']);
    expect(await store.counts()).toEqual({ rooms: 1, members: 2 });
    // The freed id is free for anyone.
    expect(await store.join('dir', m('c3', 'old'), UNIQUE)).toBe('joined');
  });

  it('opens a room without an owner on a join that asks for it, once', async () => {
    const store = make();
    const options = { uniqueIds: true, openIfAbsent: true };
    const results = await Promise.all([store.join('dir', m('c1', 'a'), options), store.join('dir', m('c2', 'b'), options)]);
    expect(results).toEqual(['joined', 'joined']);
    expect(await store.owner('dir')).toBeUndefined();
    expect(await store.open('dir', 'c-srv')).toBe('taken');
    expect(await sorted(store.members('dir'))).toEqual(['c1', 'c2']);
    expect(await store.counts()).toEqual({ rooms: 1, members: 2 });
  });

  it('leaves by identity: a successor holding the same id stays', async () => {
    const store = make();
    await store.open('dir', null);
    await store.join('dir', m('c1', 'x'), UNIQUE);
    expect(await store.leave('dir', 'c2')).toBe(false);
    expect(await store.leave('dir', 'c1')).toBe(true);
    expect(await store.leave('dir', 'c1')).toBe(false);
    expect(await sorted(store.membersWithId('dir', 'x'))).toEqual([]);
    expect(await store.join('dir', m('c2', 'x'), UNIQUE)).toBe('joined');
    expect(await store.leave('dir', 'c1')).toBe(false);
    expect(await sorted(store.membersWithId('dir', 'x'))).toEqual(['c2']);
    expect(await store.leave('nope', 'c2')).toBe(false);
    expect(await store.counts()).toEqual({ rooms: 1, members: 1 });
  });

  it('close releases every member and frees the code; later calls find no room', async () => {
    const store = make();
    await store.open('R', 'c-srv');
    for (const [connection, id] of [['c1', '1'], ['c2', '2'], ['c3', '2']] as const) await store.join('R', m(connection, id));
    expect(await store.counts()).toEqual({ rooms: 1, members: 3 });
    expect([...((await store.close('R', 'c-srv')) ?? [])].sort()).toEqual(['c1', 'c2', 'c3']);
    expect(await store.counts()).toEqual({ rooms: 0, members: 0 });
    expect(await store.owner('R')).toBeUndefined();
    expect(await sorted(store.members('R'))).toEqual([]);
    expect(await store.join('R', m('c4', '4'))).toBe('closed');
    expect(await store.leave('R', 'c1')).toBe(false);
    expect(await store.close('R', 'c-srv')).toBeUndefined();
    expect(await store.open('R', 'c-srv2')).toBe('opened');
    expect(await sorted(store.members('R'))).toEqual([]);
  });

  it('closes only for its owner: a stale owner cannot close the next room under its code', async () => {
    const store = make();
    await store.open('R', 'c-old');
    expect(await store.close('R', 'c-old')).toEqual([]);
    await store.open('R', 'c-new');
    await store.join('R', m('c1', '1'));
    expect(await store.close('R', 'c-old')).toBeUndefined();
    expect(await store.close('R', null)).toBeUndefined();
    expect(await store.owner('R')).toBe('c-new');
    expect(await sorted(store.members('R'))).toEqual(['c1']);
    await store.open('dir', null);
    expect(await store.close('dir', 'c-new')).toBeUndefined();
    expect(await store.close('dir', null)).toEqual([]);
  });

  it('keeps rooms apart and leaves nothing behind', async () => {
    const store = make();
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        expect(await store.open(`r${i}`, `srv${i}`)).toBe('opened');
        for (let j = 0; j < 3; j++) expect(await store.join(`r${i}`, m(`r${i}c${j}`, String(j)))).toBe('joined');
      }),
    );
    expect(await store.counts()).toEqual({ rooms: 50, members: 150 });
    expect(await sorted(store.membersWithId('r7', '1'))).toEqual(['r7c1']);
    const released = await Promise.all(Array.from({ length: 50 }, (_, i) => store.close(`r${i}`, `srv${i}`)));
    expect(released.map((r) => r?.length)).toEqual(Array.from({ length: 50 }, () => 3));
    expect(await store.counts()).toEqual({ rooms: 0, members: 0 });
  });

  it('holds ids, not the objects it was given', async () => {
    const store = make();
    await store.open('R', 'c-srv');
    const member = { connection: 'c1', id: 'a' };
    await store.join('R', member);
    member.id = 'b';
    member.connection = 'c2';
    expect(await sorted(store.membersWithId('R', 'a'))).toEqual(['c1']);
    expect(await sorted(store.membersWithId('R', 'b'))).toEqual([]);
  });
});

describe('MemoryRoomStore', () => {
  it('answers at once, so the relays route without a promise', () => {
    const store = new MemoryRoomStore();
    expect(store.open('R', 'c-srv')).toBe('opened');
    expect(store.join('R', m('c1', 'a'))).toBe('joined');
    expect(store.members('R')).not.toBeInstanceOf(Promise);
    expect(store.owner('R')).toBe('c-srv');
  });

  it('ends a fan-out over its live view when a member leaves, or the room closes, during it', () => {
    const store = new MemoryRoomStore();
    store.open('R', 'c-srv');
    for (let i = 0; i < 5; i++) store.join('R', m(`c${i}`, 'x'));
    const got: string[] = [];
    for (const connection of store.members('R')) {
      got.push(connection);
      // Each member reached drops the next one, as a slow-reader disconnect would.
      store.leave('R', `c${Number(connection.slice(1)) + 1}`);
    }
    expect(got).toEqual(['c0', 'c2', 'c4']);
    const seen: string[] = [];
    for (const connection of store.membersWithId('R', 'x')) {
      seen.push(connection);
      store.close('R', 'c-srv');
    }
    expect(seen).toEqual(['c0']);
  });
});
