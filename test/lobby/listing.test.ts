import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { LISTING_MAX_AGE_MS, LobbyService, MAX_LISTED_LOBBIES, type LobbyEvent } from '../../src/core/lobbies/index.js';
import type { Delivery } from '../../src/core/delivery.js';
import { MemoryLobbyStore } from '../../src/core/lobbies/store.js';
import { http } from '../clients/orion.js';
import { clientPool, startLobby } from './fixtures.js';

const TIMING = { serverConnectTimeoutMs: 60_000, connectRequestIntervalMs: 10_000, connectTimeoutMs: 30_000 };
const nowhere: Delivery<LobbyEvent> = { deliver: () => true };

async function withLobbies(count: number, store = new MemoryLobbyStore()) {
  const clock = new ManualClock();
  const service = new LobbyService({ clock, delivery: nowhere, timing: TIMING, store });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const created = await service.createLobby((await service.registerClient()).token, {
      hostName: `h${i}`,
      lobbyName: `L${i}`,
      isPublic: true,
      maxMembers: 4,
    });
    if (!created.ok) throw new Error('not created');
    ids.push(created.value.lobbyId);
  }
  return { clock, service, ids, store };
}

describe('public listing cache', () => {
  it('serves one build to every request until a change, and sees a change at once', async () => {
    const { service, ids } = await withLobbies(2);
    const first = await service.publicListing();
    expect(await service.publicListing()).toBe(first);
    expect(JSON.parse(first.json)).toEqual({ lobbies: await service.publicLobbies() });
    const joined = await service.joinLobby((await service.registerClient()).token, ids[0]!, 'Bob');
    expect(joined.ok).toBe(true);
    const after = await service.publicListing();
    expect(after).not.toBe(first);
    expect(after.lobbies.find((lobby) => lobby.id === ids[0])?.currentMembers).toBe(2);
  });

  it('rebuilds after LISTING_MAX_AGE_MS for changes it did not make (a shared store)', async () => {
    const { clock, service, store } = await withLobbies(1);
    const first = await service.publicListing();
    // Another process's service on the same store.
    const other = new LobbyService({ clock, delivery: nowhere, timing: TIMING, store });
    await other.createLobby((await other.registerClient()).token, { hostName: 'x', lobbyName: 'X', isPublic: true, maxMembers: 2 });
    expect(await service.publicListing()).toBe(first);
    clock.advance(LISTING_MAX_AGE_MS);
    expect((await service.publicListing()).lobbies).toHaveLength(2);
  });

  it('bounds the default body to MAX_LISTED_LOBBIES and keeps the rest for paging', async () => {
    const { service } = await withLobbies(MAX_LISTED_LOBBIES + 5);
    const listing = await service.publicListing();
    expect(listing.lobbies).toHaveLength(MAX_LISTED_LOBBIES + 5);
    expect((JSON.parse(listing.json) as { lobbies: unknown[] }).lobbies).toEqual(listing.lobbies.slice(0, MAX_LISTED_LOBBIES));
  });
});

describe('GET /lobbies paging', () => {
  const connect = clientPool();

  it('answers Orion exactly without parameters, and pages with ?offset=&limit=', async () => {
    const { httpPort } = await startLobby();
    const names = ['A', 'B', 'C'];
    for (const name of names) {
      const client = await connect(httpPort);
      expect((await client.createLobby({ lobbyName: name })).status).toBe(201);
    }
    const all = await http(httpPort, 'GET', '/lobbies');
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toMatch(/^application\/json/);
    const lobbies = (all.body as { lobbies: Array<{ name: string }> }).lobbies;
    expect(lobbies.map((lobby) => lobby.name).sort()).toEqual(names);
    expect((await http(httpPort, 'GET', '/lobbies?limit=2')).body).toEqual({ lobbies: lobbies.slice(0, 2) });
    expect((await http(httpPort, 'GET', '/lobbies?offset=1&limit=1')).body).toEqual({ lobbies: lobbies.slice(1, 2) });
    expect((await http(httpPort, 'GET', '/lobbies?offset=2')).body).toEqual({ lobbies: lobbies.slice(2) });
    expect((await http(httpPort, 'GET', '/lobbies?offset=9')).body).toEqual({ lobbies: [] });
    expect((await http(httpPort, 'GET', '/lobbies?limit=x')).body).toEqual(all.body);
  });
});
