// Contract suite for the lobby store seam: every LobbyStore implementation must pass it. A second
// implementation (e.g. Redis) plugs in with one more line in the table. "Concurrent" means the
// operations are all started before any is awaited, as requests handled by several processes are.
import { describe, expect, it } from 'vitest';
import { MemoryLobbyStore, type LobbyStore, type NewLobby } from '../../../src/core/lobbies/index.js';
import { RedisLobbyStore } from '../../../src/core/redis/lobby-store.js';
import { uniquePrefix, useRedis } from '../../helpers/redis.js';

// One redis-server for the file; every store made gets a prefix of its own, so tests never meet.
const redis = useRedis();

const lobbyStores: Array<[string, () => LobbyStore]> = [
  ['memory', () => new MemoryLobbyStore()],
  ...(redis.available ? [['redis', () => new RedisLobbyStore(redis.client(), uniquePrefix('lobbies'))] as [string, () => LobbyStore]] : []),
];

const NO_LIMIT = Number.POSITIVE_INFINITY;

const newLobby = (id: string, hostId: string, overrides: Partial<NewLobby> = {}): NewLobby => ({
  id,
  name: `lobby ${id}`,
  isPublic: true,
  maxMembers: 8,
  hostId,
  hostName: `name-${hostId}`,
  ...overrides,
});

/** A store with clients c1..cN (tokens t1..tN) in no lobby. */
async function withClients(make: () => LobbyStore, count: number): Promise<LobbyStore> {
  const store = make();
  for (let i = 1; i <= count; i++) expect(await store.addClient({ id: `c${i}`, token: `t${i}` })).toBe(true);
  return store;
}

/** A store with lobby L1 hosted by c1 and joined by c2..c`members`, plus `free` more clients in no lobby. */
async function withLobby(make: () => LobbyStore, members: number, free = 0, overrides: Partial<NewLobby> = {}) {
  const store = await withClients(make, members + free);
  expect((await store.create(newLobby('L1', 'c1', overrides), NO_LIMIT)).ok).toBe(true);
  for (let i = 2; i <= members; i++) expect((await store.join('L1', `c${i}`, `name-c${i}`)).ok).toBe(true);
  return store;
}

const endpoint = (port: number) => ({ address: '203.0.113.7', port });

describe.each(lobbyStores)('LobbyStore contract: %s', (_name, make) => {
  describe('clients', () => {
    it('finds a client by id and by token, in no lobby; refuses a taken id or token, changing nothing', async () => {
      const store = make();
      expect(await store.addClient({ id: 'c1', token: 't1' })).toBe(true);
      expect(await store.clientById('c1')).toEqual({ id: 'c1', token: 't1', lobbyId: null });
      expect(await store.clientByToken('t1')).toEqual({ id: 'c1', token: 't1', lobbyId: null });
      expect(await store.addClient({ id: 'c1', token: 'other' })).toBe(false);
      expect(await store.addClient({ id: 'other', token: 't1' })).toBe(false);
      expect(await store.clientByToken('other')).toBeUndefined();
      expect(await store.clientById('other')).toBeUndefined();
      expect(await store.clientById('t1')).toBeUndefined();
    });

    it('gives exactly one of many concurrent registrations of one token', async () => {
      const store = make();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.addClient({ id: `c${i}`, token: 'contested' })));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await store.clientByToken('contested'))?.id).toBe(`c${results.indexOf(true)}`);
    });

    it('removing a client forgets its id and token, and says whether it was listed', async () => {
      const store = await withClients(make, 1);
      expect(await store.removeClient('c1')).toEqual({ departure: null });
      expect(await store.removeClient('c1')).toBeUndefined();
      expect(await store.clientByToken('t1')).toBeUndefined();
      expect(await store.addClient({ id: 'c9', token: 't1' })).toBe(true);
    });
  });

  describe('create', () => {
    it('creates the lobby with its host as only member, and puts the host in it', async () => {
      const store = await withClients(make, 1);
      const created = await store.create(newLobby('L1', 'c1', { name: 'Fun', maxMembers: 3, isPublic: false }), NO_LIMIT);
      const expected = {
        id: 'L1',
        name: 'Fun',
        isPublic: false,
        maxMembers: 3,
        hostId: 'c1',
        members: [{ clientId: 'c1', name: 'name-c1' }],
        mediation: null,
      };
      expect(created).toEqual({ ok: true, lobby: expected });
      expect(await store.lobby('L1')).toEqual(expected);
      expect((await store.clientById('c1'))?.lobbyId).toBe('L1');
    });

    it('refuses in order: unregistered, already in a lobby, the limit, the id taken; changing nothing', async () => {
      const store = await withClients(make, 3);
      expect(await store.create(newLobby('L1', 'nobody'), NO_LIMIT)).toEqual({ ok: false, error: 'unregistered' });
      expect((await store.create(newLobby('L1', 'c1'), 2)).ok).toBe(true);
      expect(await store.create(newLobby('L2', 'c1'), 1)).toEqual({ ok: false, error: 'alreadyInLobby' });
      expect(await store.create(newLobby('L2', 'c2'), 1)).toEqual({ ok: false, error: 'tooManyLobbies' });
      expect(await store.create(newLobby('L1', 'c2'), 1)).toEqual({ ok: false, error: 'tooManyLobbies' });
      expect(await store.create(newLobby('L1', 'c2'), 2)).toEqual({ ok: false, error: 'idTaken' });
      expect((await store.clientById('c2'))?.lobbyId).toBeNull();
      expect((await store.lobby('L1'))?.hostId).toBe('c1');
      expect(await store.lobby('L2')).toBeUndefined();
      expect((await store.create(newLobby('L2', 'c2'), 2)).ok).toBe(true);
    });

    it('gives exactly one of many concurrent creates of one lobby id; the others stay free', async () => {
      const store = await withClients(make, 20);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.create(newLobby('SAME', `c${i + 1}`), NO_LIMIT)));
      const winners = results.flatMap((result, i) => (result.ok ? [`c${i + 1}`] : []));
      expect(winners).toHaveLength(1);
      expect(results.filter((result) => !result.ok && result.error === 'idTaken')).toHaveLength(19);
      expect((await store.lobby('SAME'))?.hostId).toBe(winners[0]);
      for (let i = 1; i <= 20; i++) {
        const client = await store.clientById(`c${i}`);
        expect(client?.lobbyId).toBe(client?.id === winners[0] ? 'SAME' : null);
      }
    });

    it('lets one client host at most one lobby, even when it creates several at once', async () => {
      const store = await withClients(make, 1);
      const results = await Promise.all(['A', 'B', 'C', 'D'].map((id) => store.create(newLobby(id, 'c1'), NO_LIMIT)));
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect(results.filter((result) => !result.ok && result.error === 'alreadyInLobby')).toHaveLength(3);
    });

    it('never passes the limit under concurrent creates', async () => {
      const store = await withClients(make, 10);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.create(newLobby(`L${i}`, `c${i + 1}`), 3)));
      expect(results.filter((result) => result.ok)).toHaveLength(3);
      expect(results.filter((result) => !result.ok && result.error === 'tooManyLobbies')).toHaveLength(7);
    });
  });

  describe('join', () => {
    it('seats the joiner last and puts it in the lobby', async () => {
      const store = await withLobby(make, 2, 1);
      const joined = await store.join('L1', 'c3', 'Third');
      expect(joined.ok && joined.lobby.members).toEqual([
        { clientId: 'c1', name: 'name-c1' },
        { clientId: 'c2', name: 'name-c2' },
        { clientId: 'c3', name: 'Third' },
      ]);
      expect((await store.clientById('c3'))?.lobbyId).toBe('L1');
      expect((await store.lobby('L1'))?.members).toHaveLength(3);
    });

    it('refuses in order: unregistered, already in a lobby, missing, locked, full, name taken', async () => {
      const store = await withLobby(make, 2, 2, { maxMembers: 3 });
      expect(await store.join('L1', 'nobody', 'x')).toEqual({ ok: false, error: 'unregistered' });
      expect(await store.join('NOPE', 'c2', 'x')).toEqual({ ok: false, error: 'alreadyInLobby' });
      expect(await store.join('NOPE', 'c3', 'x')).toEqual({ ok: false, error: 'lobbyMissing' });
      expect(await store.join('L1', 'c3', 'name-c2')).toEqual({ ok: false, error: 'nameTaken' });
      expect((await store.startMediation('L1', 'c1', 'a1')).ok).toBe(true);
      expect(await store.join('L1', 'c3', 'name-c2')).toEqual({ ok: false, error: 'lobbyLocked' });
      expect(await store.endMediation('L1', 'a1')).toBeDefined();
      expect((await store.join('L1', 'c3', 'x')).ok).toBe(true);
      expect(await store.join('L1', 'c4', 'x')).toEqual({ ok: false, error: 'lobbyFull' });
      expect((await store.clientById('c4'))?.lobbyId).toBeNull();
    });

    it('gives the last seat to exactly one of many concurrent joiners', async () => {
      const store = await withLobby(make, 1, 20, { maxMembers: 2 });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.join('L1', `c${i + 2}`, `p${i}`)));
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect(results.filter((result) => !result.ok && result.error === 'lobbyFull')).toHaveLength(19);
      const lobby = await store.lobby('L1');
      expect(lobby?.members).toHaveLength(2);
      const winner = lobby?.members[1]?.clientId as string;
      expect((await store.clientById(winner))?.lobbyId).toBe('L1');
      const seated = await Promise.all(Array.from({ length: 20 }, (_, i) => store.clientById(`c${i + 2}`)));
      expect(seated.filter((client) => client?.lobbyId === 'L1')).toHaveLength(1);
    });

    it('gives a name to exactly one of many concurrent joiners asking for it', async () => {
      const store = await withLobby(make, 1, 10, { maxMembers: 64 });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.join('L1', `c${i + 2}`, 'Same')));
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect(results.filter((result) => !result.ok && result.error === 'nameTaken')).toHaveLength(9);
    });

    it('puts a client in at most one lobby when it joins several at once', async () => {
      const store = await withClients(make, 4);
      for (const [id, host] of [['A', 'c1'], ['B', 'c2'], ['C', 'c3']] as const) await store.create(newLobby(id, host), NO_LIMIT);
      const results = await Promise.all(['A', 'B', 'C'].map((id) => store.join(id, 'c4', 'p')));
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      const members = await Promise.all(['A', 'B', 'C'].map(async (id) => (await store.lobby(id))?.members.length));
      expect(members.sort()).toEqual([1, 1, 2]);
    });
  });

  describe('leave and delete', () => {
    it('a member leaving removes exactly it, by identity; the others keep their seats in order', async () => {
      const store = await withLobby(make, 3);
      expect(await store.leave('c2')).toEqual({
        outcome: 'left',
        name: 'name-c2',
        ended: null,
        lobby: expect.objectContaining({
          id: 'L1',
          members: [
            { clientId: 'c1', name: 'name-c1' },
            { clientId: 'c3', name: 'name-c3' },
          ],
        }),
      });
      expect((await store.clientById('c2'))?.lobbyId).toBeNull();
      expect((await store.clientById('c3'))?.lobbyId).toBe('L1');
      expect(await store.leave('c2')).toBeNull();
      expect(await store.leave('nobody')).toBeNull();
      // The name is free again, and the seat.
      expect((await store.join('L1', 'c2', 'name-c2')).ok).toBe(true);
    });

    it('the host leaving deletes the lobby, frees its id and every member', async () => {
      const store = await withLobby(make, 3, 1);
      const departure = await store.leave('c1');
      expect(departure).toEqual({
        outcome: 'closed',
        name: 'name-c1',
        lobby: expect.objectContaining({
          id: 'L1',
          hostId: 'c1',
          members: [
            { clientId: 'c2', name: 'name-c2' },
            { clientId: 'c3', name: 'name-c3' },
          ],
        }),
      });
      expect(await store.lobby('L1')).toBeUndefined();
      for (const id of ['c1', 'c2', 'c3']) expect((await store.clientById(id))?.lobbyId).toBeNull();
      expect((await store.create(newLobby('L1', 'c4'), NO_LIMIT)).ok).toBe(true);
    });

    it('removing a client is leaving and forgetting in one step', async () => {
      const store = await withLobby(make, 2);
      const removed = await store.removeClient('c1');
      expect(removed?.departure?.outcome).toBe('closed');
      expect(await store.clientById('c1')).toBeUndefined();
      expect((await store.clientById('c2'))?.lobbyId).toBeNull();
    });

    it('a member leaving during mediation ends the attempt and unlocks the lobby', async () => {
      const store = await withLobby(make, 3, 1);
      await store.startMediation('L1', 'c1', 'a1');
      await store.captureAddress('c2', endpoint(2));
      const departure = await store.leave('c3');
      expect(departure?.outcome === 'left' && departure.ended).toEqual({
        attempt: 'a1',
        stage: 'collecting',
        addresses: { c2: endpoint(2) },
        connected: [],
      });
      expect((await store.lobby('L1'))?.mediation).toBeNull();
      expect(await store.endMediation('L1', 'a1')).toBeUndefined();
      expect((await store.join('L1', 'c4', 'x')).ok).toBe(true);
    });

    it('delete frees the lobby id and every member; a second delete finds nothing', async () => {
      const store = await withLobby(make, 2, 1);
      const last = await store.delete('L1');
      expect(last?.members.map((member) => member.clientId)).toEqual(['c1', 'c2']);
      expect(await store.delete('L1')).toBeUndefined();
      expect(await store.lobby('L1')).toBeUndefined();
      expect((await store.clientById('c1'))?.lobbyId).toBeNull();
      expect((await store.clientById('c2'))?.lobbyId).toBeNull();
      expect((await store.create(newLobby('L1', 'c3'), NO_LIMIT)).ok).toBe(true);
      expect((await store.join('L1', 'c1', 'x')).ok).toBe(true);
    });
  });

  describe('listing', () => {
    it('lists public lobbies only, locked ones included, oldest first', async () => {
      const store = await withClients(make, 4);
      await store.create(newLobby('A', 'c1'), NO_LIMIT);
      await store.create(newLobby('B', 'c2', { isPublic: false }), NO_LIMIT);
      await store.create(newLobby('C', 'c3'), NO_LIMIT);
      await store.join('C', 'c4', 'x');
      await store.startMediation('C', 'c3', 'a1');
      const listed = await store.publicLobbies();
      expect(listed.map((lobby) => lobby.id)).toEqual(['A', 'C']);
      expect(listed[1]?.members).toHaveLength(2);
      await store.delete('A');
      expect((await store.publicLobbies()).map((lobby) => lobby.id)).toEqual(['C']);
    });

    it('hands out snapshots: later changes and the caller\'s edits do not show in records already read', async () => {
      const store = await withLobby(make, 2, 1);
      const before = await store.lobby('L1');
      await store.join('L1', 'c3', 'x');
      expect(before?.members).toHaveLength(2);
      const mutable = (await store.lobby('L1')) as unknown as { members: unknown[] };
      mutable.members.length = 0;
      expect((await store.lobby('L1'))?.members).toHaveLength(3);
      const given = endpoint(1);
      await store.startMediation('L1', 'c1', 'a1');
      await store.captureAddress('c1', given);
      given.port = 99;
      expect((await store.lobby('L1'))?.mediation?.addresses.c1).toEqual(endpoint(1));
    });
  });

  describe('mediation', () => {
    it('refuses a start in order: missing, not host, under way, too few members', async () => {
      const store = await withLobby(make, 1, 1);
      expect(await store.startMediation('NOPE', 'c1', 'a1')).toEqual({ ok: false, error: 'lobbyMissing' });
      expect(await store.startMediation('L1', 'c2', 'a1')).toEqual({ ok: false, error: 'notHost' });
      expect(await store.startMediation('L1', 'c1', 'a1')).toEqual({ ok: false, error: 'tooFewMembers' });
      await store.join('L1', 'c2', 'x');
      const started = await store.startMediation('L1', 'c1', 'a1');
      expect(started.ok && started.lobby.mediation).toEqual({ attempt: 'a1', stage: 'collecting', addresses: {}, connected: [] });
      expect(await store.startMediation('L1', 'c1', 'a2')).toEqual({ ok: false, error: 'mediationUnderWay' });
    });

    it('starts exactly one of many concurrent attempts', async () => {
      const store = await withLobby(make, 2);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.startMediation('L1', 'c1', `a${i}`)));
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect((await store.lobby('L1'))?.mediation?.attempt).toBe(`a${results.findIndex((result) => result.ok)}`);
    });

    it('collects addresses (a repeat replaces), completes on the last one, then ignores more', async () => {
      const store = await withLobby(make, 3, 1);
      expect(await store.captureAddress('c1', endpoint(1))).toEqual({ outcome: 'ignored' });
      await store.startMediation('L1', 'c1', 'a1');
      expect(await store.captureAddress('c4', endpoint(4))).toEqual({ outcome: 'ignored' });
      expect(await store.captureAddress('nobody', endpoint(4))).toEqual({ outcome: 'ignored' });
      expect((await store.captureAddress('c2', endpoint(20))).outcome).toBe('recorded');
      expect((await store.captureAddress('c2', endpoint(2))).outcome).toBe('recorded');
      expect((await store.captureAddress('c1', endpoint(1))).outcome).toBe('recorded');
      const complete = await store.captureAddress('c3', endpoint(3));
      expect(complete.outcome).toBe('complete');
      expect(complete.outcome !== 'ignored' && complete.lobby.mediation).toEqual({
        attempt: 'a1',
        stage: 'connecting',
        addresses: { c1: endpoint(1), c2: endpoint(2), c3: endpoint(3) },
        connected: [],
      });
      expect(await store.captureAddress('c2', endpoint(9))).toEqual({ outcome: 'ignored' });
      expect((await store.lobby('L1'))?.mediation?.addresses.c2).toEqual(endpoint(2));
    });

    it('completes exactly once when the last addresses arrive at once', async () => {
      const store = await withLobby(make, 6);
      await store.startMediation('L1', 'c1', 'a1');
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.captureAddress(`c${i + 1}`, endpoint(i))));
      expect(results.filter((result) => result.outcome === 'complete')).toHaveLength(1);
    });

    it('takes success reports only while connecting; the last one deletes the lobby and frees its members', async () => {
      const store = await withLobby(make, 2);
      await store.startMediation('L1', 'c1', 'a1');
      expect(await store.reportConnected('c1')).toEqual({ outcome: 'ignored' });
      await store.captureAddress('c1', endpoint(1));
      await store.captureAddress('c2', endpoint(2));
      expect((await store.reportConnected('c2')).outcome).toBe('recorded');
      expect((await store.reportConnected('c2')).outcome).toBe('recorded');
      const succeeded = await store.reportConnected('c1');
      expect(succeeded.outcome).toBe('succeeded');
      expect(succeeded.outcome !== 'ignored' && succeeded.lobby.members.map((member) => member.clientId)).toEqual(['c1', 'c2']);
      expect(await store.lobby('L1')).toBeUndefined();
      expect((await store.clientById('c1'))?.lobbyId).toBeNull();
      expect((await store.clientById('c2'))?.lobbyId).toBeNull();
      expect(await store.reportConnected('c1')).toEqual({ outcome: 'ignored' });
    });

    it('succeeds exactly once when every member reports at once', async () => {
      const store = await withLobby(make, 5);
      await store.startMediation('L1', 'c1', 'a1');
      for (let i = 1; i <= 5; i++) await store.captureAddress(`c${i}`, endpoint(i));
      const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store.reportConnected(`c${i + 1}`)));
      expect(results.filter((result) => result.outcome === 'succeeded')).toHaveLength(1);
    });

    it('ends only the named attempt: an earlier attempt\'s end changes nothing', async () => {
      const store = await withLobby(make, 2);
      expect(await store.endMediation('L1', 'a1')).toBeUndefined();
      await store.startMediation('L1', 'c1', 'a1');
      await store.captureAddress('c1', endpoint(1));
      expect((await store.endMediation('L1', 'a1'))?.mediation).toBeNull();
      await store.startMediation('L1', 'c1', 'a2');
      expect(await store.endMediation('L1', 'a1')).toBeUndefined();
      const lobby = await store.lobby('L1');
      // A new attempt captures afresh.
      expect(lobby?.mediation).toEqual({ attempt: 'a2', stage: 'collecting', addresses: {}, connected: [] });
      expect(await store.endMediation('NOPE', 'a2')).toBeUndefined();
    });
  });
});
