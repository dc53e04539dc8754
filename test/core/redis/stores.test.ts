// What only the Redis stores have to show: two nodes (two store instances, each on its own
// client, one prefix) racing for one id get exactly one win; data outlives a connection; prefixes
// keep clusters apart; a dead node's records can be purged; scripts reload after a SCRIPT FLUSH
// and a server restart.
import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../../src/core/directory.js';
import { RedisAddressBook } from '../../../src/core/redis/address-book.js';
import { RedisLobbyStore } from '../../../src/core/redis/lobby-store.js';
import { RedisRoomStore } from '../../../src/core/redis/room-store.js';
import type { RedisClient } from '../../../src/core/redis/script.js';
import { RedisSessionStore } from '../../../src/core/redis/session-store.js';
import { connectClient, uniquePrefix, useRedis } from '../../helpers/redis.js';

const redis = useRedis();

interface TestSession extends SessionRecord {
  readonly connection: string;
}

const session = (id: string, publicId: string, secret: string): TestSession => ({ id, publicId, secret, connection: `conn-${id}` });

const ATTEMPTS = 50;

/** Two nodes: a store of each kind per node, each node on its own connection, one shared prefix. */
async function twoNodes(prefix = uniquePrefix('cluster')) {
  const clients: [RedisClient, RedisClient] = [redis.client(), await redis.newClient()];
  const node = (i: 0 | 1) => {
    const options = { nodeId: `node-${i}` };
    return {
      sessions: new RedisSessionStore<TestSession>(clients[i], prefix, options),
      addresses: new RedisAddressBook(clients[i], prefix, options),
      rooms: new RedisRoomStore(clients[i], prefix, options),
      lobbies: new RedisLobbyStore(clients[i], prefix, options),
    };
  };
  return { prefix, nodes: [node(0), node(1)] as const };
}

const across = <T>(count: number, attempt: (node: 0 | 1, i: number) => Promise<T>) =>
  Promise.all(Array.from({ length: count }, (_, i) => attempt((i % 2) as 0 | 1, i)));

describe.runIf(redis.available)('Redis stores across two nodes', () => {
  it('give one of 50 concurrent claims of one public id, and of one secret, to exactly one node', async () => {
    const { nodes } = await twoNodes();
    const byPublic = await across(ATTEMPTS, (n, i) => nodes[n].sessions.claim(session(`s${i}`, 'contested', `pid${i}`)));
    expect(byPublic.filter(Boolean)).toHaveLength(1);
    const winner = byPublic.indexOf(true);
    expect((await nodes[(1 - (winner % 2)) as 0 | 1].sessions.byPublicId('contested'))?.id).toBe(`s${winner}`);
    const bySecret = await across(ATTEMPTS, (n, i) => nodes[n].sessions.claim(session(`t${i}`, `oid${i}`, 'secret')));
    expect(bySecret.filter(Boolean)).toHaveLength(1);
    expect((await nodes[0].sessions.bySecret('secret'))?.id).toBe(`t${bySecret.indexOf(true)}`);
  });

  it('give one of 50 concurrent opens of one room code, and of joins of one unique id, to exactly one node', async () => {
    const { nodes } = await twoNodes();
    const opens = await across(ATTEMPTS, (n, i) => nodes[n].rooms.open('contested', `c${i}`));
    expect(opens.filter((r) => r === 'opened')).toHaveLength(1);
    expect(await nodes[1].rooms.owner('contested')).toBe(`c${opens.indexOf('opened')}`);
    const joins = await across(ATTEMPTS, (n, i) => nodes[n].rooms.join('dir', { connection: `c${i}`, id: 'x' }, { uniqueIds: true, openIfAbsent: true }));
    expect(joins.filter((r) => r === 'joined')).toHaveLength(1);
    expect([...(await nodes[0].rooms.membersWithId('dir', 'x'))]).toEqual([`c${joins.indexOf('joined')}`]);
    // counts are the cluster's, whichever node asks
    expect(await nodes[0].rooms.counts()).toEqual({ rooms: 2, members: 1 });
    expect(await nodes[1].rooms.counts()).toEqual({ rooms: 2, members: 1 });
  });

  it('respect maxRooms cluster-wide under concurrent opens', async () => {
    const { nodes } = await twoNodes();
    const opens = await across(ATTEMPTS, (n, i) => nodes[n].rooms.open(`r${i}`, `c${i}`, { maxRooms: 10 }));
    expect(opens.filter((r) => r === 'opened')).toHaveLength(10);
    expect(await nodes[1].rooms.counts()).toEqual({ rooms: 10, members: 0 });
  });

  it('give one of 50 concurrent client tokens, lobby ids and last seats to exactly one node', async () => {
    const { nodes } = await twoNodes();
    const tokens = await across(ATTEMPTS, (n, i) => nodes[n].lobbies.addClient({ id: `x${i}`, token: 'contested' }));
    expect(tokens.filter(Boolean)).toHaveLength(1);
    await across(ATTEMPTS, (n, i) => nodes[n].lobbies.addClient({ id: `c${i}`, token: `t${i}` }));
    const lobby = (hostId: string) => ({ id: 'L1', name: 'L', isPublic: true, maxMembers: 2, hostId, hostName: hostId });
    const creates = await across(ATTEMPTS, (n, i) => nodes[n].lobbies.create(lobby(`c${i}`), 100));
    expect(creates.filter((r) => r.ok)).toHaveLength(1);
    expect(creates.filter((r) => !r.ok && r.error === 'idTaken')).toHaveLength(ATTEMPTS - 1);
    const host = `c${creates.findIndex((r) => r.ok)}`;
    const joins = await across(ATTEMPTS, (n, i) => nodes[n].lobbies.join('L1', `c${i}`, `name${i}`));
    expect(joins.filter((r) => r.ok)).toHaveLength(1);
    const seated = await nodes[0].lobbies.lobby('L1');
    expect(seated?.members).toHaveLength(2);
    expect(seated?.members[0]?.clientId).toBe(host);
  });

  it('give one of 50 concurrent lobby creations under a limit of 5 their lobbies, cluster-wide', async () => {
    const { nodes } = await twoNodes();
    await across(ATTEMPTS, (n, i) => nodes[n].lobbies.addClient({ id: `c${i}`, token: `t${i}` }));
    const creates = await across(ATTEMPTS, (n, i) =>
      nodes[n].lobbies.create({ id: `L${i}`, name: 'L', isPublic: true, maxMembers: 2, hostId: `c${i}`, hostName: 'h' }, 5),
    );
    expect(creates.filter((r) => r.ok)).toHaveLength(5);
    expect(await nodes[1].lobbies.publicLobbies()).toHaveLength(5);
  });
});

describe.runIf(redis.available)('Redis stores: durability and isolation', () => {
  it('keep their data when the client that wrote it is gone', async () => {
    const prefix = uniquePrefix('durable');
    const writer = await connectClient(redis.server().url);
    await new RedisSessionStore<TestSession>(writer, prefix).claim(session('s1', 'oid', 'pid'));
    await new RedisAddressBook(writer, prefix).record('s1', { address: '1.2.3.4', port: 5 });
    await new RedisRoomStore(writer, prefix).open('R', 'c-srv');
    await new RedisLobbyStore(writer, prefix).addClient({ id: 'c1', token: 't1' });
    await writer.quit();

    const reader = await redis.newClient();
    expect((await new RedisSessionStore<TestSession>(reader, prefix).bySecret('pid'))?.connection).toBe('conn-s1');
    expect(await new RedisAddressBook(reader, prefix).endpointOf('s1')).toEqual({ address: '1.2.3.4', port: 5 });
    expect(await new RedisRoomStore(reader, prefix).owner('R')).toBe('c-srv');
    expect(await new RedisLobbyStore(reader, prefix).clientByToken('t1')).toEqual({ id: 'c1', token: 't1', lobbyId: null });
  });

  it('keep prefixes apart: the same ids under two prefixes are two records', async () => {
    const client = redis.client();
    const [a, b] = [uniquePrefix('a'), uniquePrefix('b')];
    expect(await new RedisSessionStore<TestSession>(client, a).claim(session('s1', 'oid', 'pid'))).toBe(true);
    expect(await new RedisSessionStore<TestSession>(client, b).claim(session('s2', 'oid', 'pid'))).toBe(true);
    expect((await new RedisSessionStore<TestSession>(client, a).byPublicId('oid'))?.id).toBe('s1');
    const [roomsA, roomsB] = [new RedisRoomStore(client, a), new RedisRoomStore(client, b)];
    expect(await roomsA.open('R', 'c1')).toBe('opened');
    expect(await roomsB.open('R', 'c2')).toBe('opened');
    await roomsA.join('R', { connection: 'm1', id: '1' });
    expect(await roomsA.counts()).toEqual({ rooms: 1, members: 1 });
    expect(await roomsB.counts()).toEqual({ rooms: 1, members: 0 });
    const [lobbiesA, lobbiesB] = [new RedisLobbyStore(client, a), new RedisLobbyStore(client, b)];
    expect(await lobbiesA.addClient({ id: 'c1', token: 't1' })).toBe(true);
    expect(await lobbiesB.addClient({ id: 'c1', token: 't1' })).toBe(true);
    await new RedisAddressBook(client, a).record('s1', { address: '1.1.1.1', port: 1 });
    expect(await new RedisAddressBook(client, b).endpointOf('s1')).toBeUndefined();
    // Every key a store wrote starts with its prefix.
    const keys = await client.keys(`${a}*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(await client.keys(`*`)).toEqual(expect.arrayContaining(keys));
  });

  it('keeps codes with separators apart (no key of one room is a key of another)', async () => {
    const rooms = new RedisRoomStore(redis.client(), uniquePrefix('codes'));
    await rooms.open('a', 'c1');
    await rooms.open('a:m', 'c2');
    await rooms.join('a', { connection: 'x', id: '1:2' });
    await rooms.join('a:m', { connection: 'y', id: '2' });
    expect([...(await rooms.members('a'))]).toEqual(['x']);
    expect([...(await rooms.membersWithId('a', '1:2'))]).toEqual(['x']);
    expect([...(await rooms.membersWithId('a:m', '2'))]).toEqual(['y']);
    expect([...(await rooms.membersWithId('a:1', '2'))]).toEqual([]);
  });
});

describe.runIf(redis.available)('Redis stores: purging a dead node', () => {
  it('removes the sessions and endpoints the node claimed, not the other node’s', async () => {
    const { nodes } = await twoNodes();
    await nodes[0].sessions.claim(session('s0', 'oid0', 'pid0'));
    await nodes[1].sessions.claim(session('s1', 'oid1', 'pid1'));
    await nodes[0].addresses.record('s0', { address: '1.1.1.1', port: 1 });
    await nodes[1].addresses.record('s1', { address: '1.1.1.1', port: 2 });
    expect((await nodes[1].sessions.purgeNode('node-0')).map((s) => s.id)).toEqual(['s0']);
    expect(await nodes[1].addresses.purgeNode('node-0')).toEqual(['s0']);
    expect(await nodes[1].sessions.bySecret('pid0')).toBeUndefined();
    expect(await nodes[1].sessions.byPublicId('oid0')).toBeUndefined();
    expect((await nodes[0].sessions.byPublicId('oid1'))?.id).toBe('s1');
    expect(await nodes[0].addresses.endpointOf('s0')).toBeUndefined();
    expect(await nodes[0].addresses.endpointOf('s1')).toEqual({ address: '1.1.1.1', port: 2 });
    expect(await nodes[1].sessions.purgeNode('node-0')).toEqual([]);
    // The freed ids can be claimed again.
    expect(await nodes[1].sessions.claim(session('s2', 'oid0', 'pid0'))).toBe(true);
  });

  it('closes the owned rooms the node opened and drops its memberships; ownerless rooms stay', async () => {
    const { nodes } = await twoNodes();
    await nodes[0].rooms.open('A', 'a-srv');
    await nodes[1].rooms.open('B', 'b-srv');
    await nodes[0].rooms.join('dir', { connection: 'a1', id: 'x' }, { openIfAbsent: true });
    await nodes[1].rooms.join('dir', { connection: 'b1', id: 'y' }, { openIfAbsent: true });
    await nodes[1].rooms.join('A', { connection: 'b2', id: '1' });
    await nodes[0].rooms.join('B', { connection: 'a2', id: '1' });
    const purged = await nodes[1].rooms.purgeNode('node-0');
    expect(purged.closed).toEqual([{ code: 'A', released: ['b2'] }]);
    expect(purged.memberships).toBe(2);
    // Who to tell: B's owner learns that its member '1' left; the ownerless directory has nobody to tell.
    expect([...purged.left].sort((x, y) => x.code.localeCompare(y.code))).toEqual([
      { code: 'B', id: '1', owner: 'b-srv' },
      { code: 'dir', id: 'x', owner: undefined },
    ]);
    expect(await nodes[1].rooms.owner('A')).toBeUndefined();
    expect([...(await nodes[1].rooms.members('dir'))]).toEqual(['b1']);
    expect([...(await nodes[1].rooms.members('B'))]).toEqual([]);
    expect(await nodes[1].rooms.counts()).toEqual({ rooms: 2, members: 1 });
  });

  it('removes the node’s lobby clients as removeClient does: hosted lobbies close, others see them leave', async () => {
    const { nodes } = await twoNodes();
    await nodes[0].lobbies.addClient({ id: 'a1', token: 'ta1' });
    await nodes[0].lobbies.addClient({ id: 'a2', token: 'ta2' });
    await nodes[1].lobbies.addClient({ id: 'b1', token: 'tb1' });
    await nodes[1].lobbies.addClient({ id: 'b2', token: 'tb2' });
    const lobby = (id: string, hostId: string) => ({ id, name: id, isPublic: true, maxMembers: 4, hostId, hostName: hostId });
    await nodes[0].lobbies.create(lobby('LA', 'a1'), 10);
    await nodes[1].lobbies.create(lobby('LB', 'b1'), 10);
    await nodes[1].lobbies.join('LA', 'b2', 'b2');
    await nodes[0].lobbies.join('LB', 'a2', 'a2');
    const purged = await nodes[1].lobbies.purgeNode('node-0');
    expect(purged.map((p) => [p.clientId, p.departure?.outcome]).sort()).toEqual([
      ['a1', 'closed'],
      ['a2', 'left'],
    ]);
    expect(await nodes[1].lobbies.lobby('LA')).toBeUndefined();
    expect((await nodes[1].lobbies.clientById('b2'))?.lobbyId).toBeNull();
    expect((await nodes[1].lobbies.lobby('LB'))?.members.map((m) => m.clientId)).toEqual(['b1']);
    expect(await nodes[1].lobbies.clientByToken('ta1')).toBeUndefined();
    expect((await nodes[1].lobbies.publicLobbies()).map((l) => l.id)).toEqual(['LB']);
  });
});

describe.runIf(redis.available)('Redis stores: scripts', () => {
  it('load their scripts again after a SCRIPT FLUSH', async () => {
    const client = redis.client();
    const sessions = new RedisSessionStore<TestSession>(client, uniquePrefix('flush'));
    expect(await sessions.claim(session('s1', 'oid1', 'pid1'))).toBe(true);
    await client.scriptFlush();
    expect(await sessions.claim(session('s2', 'oid2', 'pid2'))).toBe(true);
    expect((await sessions.bySecret('pid2'))?.id).toBe('s2');
  });

  it('work again after the server restarts (empty: nothing is persisted)', async () => {
    const client = await redis.newClient();
    const rooms = new RedisRoomStore(client, uniquePrefix('restart'));
    expect(await rooms.open('R', 'c1')).toBe('opened');
    await redis.server().restart();
    // The client reconnects by itself; the first command may fail while it does.
    let owner: string | undefined | Error = new Error('not asked');
    for (let i = 0; i < 50 && owner instanceof Error; i++) {
      owner = await Promise.resolve(rooms.owner('R')).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
      if (owner instanceof Error) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(owner).toBeUndefined();
    expect(await rooms.open('R', 'c2')).toBe('opened');
  });
});
