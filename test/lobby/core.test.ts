import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import { ManualClock } from '../../src/core/clock.js';
import type { Delivery } from '../../src/core/delivery.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import {
  LobbyService,
  MemoryLobbyStore,
  type ClientId,
  type LobbyEvent,
  type MediationObserver,
  type MediationOutcome,
} from '../../src/core/lobbies/index.js';

type Event = LobbyEvent & { to: ClientId };

/** Every delivered event, with its recipient; and the outcomes the observer heard. */
class Recorder implements Delivery<LobbyEvent>, MediationObserver {
  events: Event[] = [];
  outcomes: MediationOutcome[] = [];
  deliver(to: ClientId, event: LobbyEvent): boolean {
    this.events.push({ to, ...event });
    return true;
  }
  mediationEnded(_lobbyId: string, outcome: MediationOutcome) {
    this.outcomes.push(outcome);
  }
  take(): Event[] {
    const taken = this.events;
    this.events = [];
    return taken;
  }
}

const TIMING = { serverConnectTimeoutMs: 60_000, connectRequestIntervalMs: 10_000, connectTimeoutMs: 30_000 };

function setup(options: { mediationAvailable?: boolean; newLobbyId?: () => string; maxLobbies?: number } = {}) {
  const clock = new ManualClock();
  const events = new Recorder();
  const service = new LobbyService({ clock, delivery: events, observer: events, timing: TIMING, ...options });
  /** Moves the clock and waits for what its timers started. */
  const advance = async (ms: number) => {
    clock.advance(ms);
    await service.settled();
  };
  return { clock, events, service, advance };
}

type Member = { id: ClientId; token: string };

/** A lobby with a host and members in join order; events of the setup are discarded. */
async function lobby(service: LobbyService, events: Recorder, names: string[]): Promise<{ lobbyId: string; members: Member[] }> {
  const host = await service.registerClient();
  const created = await service.createLobby(host.token, { hostName: names[0] as string, lobbyName: 'L', isPublic: true, maxMembers: 64 });
  if (!created.ok) throw new Error('create failed');
  const members = [host];
  for (const name of names.slice(1)) {
    const member = await service.registerClient();
    const joined = await service.joinLobby(member.token, created.value.lobbyId, name);
    if (!joined.ok) throw new Error('join failed');
    members.push(member);
  }
  events.take();
  return { lobbyId: created.value.lobbyId, members };
}

const endpoint = (port: number): Endpoint => ({ address: '203.0.113.7', port });

describe('LobbyService: clients and lobbies', () => {
  it('registers clients with distinct tokens and forgets them on removal', async () => {
    const { service } = setup();
    const a = await service.registerClient();
    const b = await service.registerClient();
    expect(a.token).not.toBe(b.token);
    expect(await service.clientIdOf(a.token)).toBe(a.id);
    await service.removeClient(a.id);
    expect(await service.clientIdOf(a.token)).toBeUndefined();
    expect(service.counts().clients).toBe(1);
  });

  it('makes 5-character ids from 0-9A-Z and retries on a collision', async () => {
    const ids = ['AAAAA', 'AAAAA', 'BBBBB'];
    const { service } = setup({ newLobbyId: () => ids.shift() ?? 'CCCCC' });
    const request = { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 };
    const first = await service.createLobby((await service.registerClient()).token, request);
    const second = await service.createLobby((await service.registerClient()).token, request);
    expect(first.ok && first.value.lobbyId).toBe('AAAAA');
    expect(second.ok && second.value.lobbyId).toBe('BBBBB');

    const real = setup().service;
    for (let i = 0; i < 200; i++) {
      const created = await real.createLobby((await real.registerClient()).token, request);
      expect(created.ok && created.value.lobbyId).toMatch(/^[0-9A-Z]{5}$/);
    }
    expect(real.counts().lobbies).toBe(200);
  });

  it('refuses creating past maxLobbies as tooManyLobbies, after the token and conflict checks', async () => {
    const { service } = setup({ maxLobbies: 2 });
    const request = { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 };
    const clients = [await service.registerClient(), await service.registerClient(), await service.registerClient()];
    expect((await service.createLobby(clients[0]!.token, request)).ok).toBe(true);
    expect((await service.createLobby(clients[1]!.token, request)).ok).toBe(true);
    expect(await service.createLobby('nope', request)).toEqual({ ok: false, error: 'unregistered' });
    expect(await service.createLobby(clients[0]!.token, request)).toEqual({ ok: false, error: 'alreadyInLobby' });
    expect(await service.createLobby(clients[2]!.token, request)).toEqual({ ok: false, error: 'tooManyLobbies' });
    // A slot frees when a lobby closes.
    await service.removeClient(clients[0]!.id);
    expect((await service.createLobby(clients[2]!.token, request)).ok).toBe(true);
  });

  it('refuses unknown tokens as unregistered, before any state check', async () => {
    const { service } = setup();
    const request = { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 };
    expect(await service.createLobby('nope', request)).toEqual({ ok: false, error: 'unregistered' });
    expect(await service.joinLobby('nope', 'XXXXX', 'p')).toEqual({ ok: false, error: 'unregistered' });
    expect(await service.startMediation('nope', 'XXXXX')).toEqual({ ok: false, error: 'unregistered' });
  });

  it('checks join conflicts in order: in a lobby, missing, locked, full, name taken', async () => {
    const { service, events } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    const outsider = await service.registerClient();
    const conflictOf = (result: Awaited<ReturnType<LobbyService['joinLobby']>>) => (result.ok ? 'ok' : result.error);

    expect(conflictOf(await service.joinLobby(members[1]!.token, 'ZZZZZ', 'A'))).toBe('alreadyInLobby');
    expect(conflictOf(await service.joinLobby(outsider.token, 'ZZZZZ', 'A'))).toBe('lobbyMissing');
    expect(conflictOf(await service.joinLobby(outsider.token, lobbyId, 'A'))).toBe('nameTaken');
    expect((await service.startMediation(members[0]!.token, lobbyId)).ok).toBe(true);
    expect(conflictOf(await service.joinLobby(outsider.token, lobbyId, 'A'))).toBe('lobbyLocked');

    const small = setup();
    const host = await small.service.registerClient();
    const created = await small.service.createLobby(host.token, { hostName: 'H', lobbyName: 'l', isPublic: false, maxMembers: 1 });
    if (!created.ok) throw new Error('create failed');
    const joiner = await small.service.registerClient();
    expect(conflictOf(await small.service.joinLobby(joiner.token, created.value.lobbyId, 'H'))).toBe('lobbyFull');
    expect(await small.service.publicLobbies()).toEqual([]);
  });

  it('checks ptp/start conflicts in order: missing, not host, under way, too few, unavailable', async () => {
    const conflictOf = (result: Awaited<ReturnType<LobbyService['startMediation']>>) => (result.ok ? 'ok' : result.error);
    const { service, events } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host']);
    expect(conflictOf(await service.startMediation(members[0]!.token, 'ZZZZZ'))).toBe('lobbyMissing');
    expect(conflictOf(await service.startMediation(members[0]!.token, lobbyId))).toBe('tooFewMembers');
    const member = await service.registerClient();
    await service.joinLobby(member.token, lobbyId, 'M');
    expect(conflictOf(await service.startMediation(member.token, lobbyId))).toBe('notHost');
    expect((await service.startMediation(members[0]!.token, lobbyId)).ok).toBe(true);
    expect(conflictOf(await service.startMediation(members[0]!.token, lobbyId))).toBe('mediationUnderWay');

    const off = setup({ mediationAvailable: false });
    const offLobby = await lobby(off.service, off.events, ['Host', 'M']);
    expect(conflictOf(await off.service.startMediation(offLobby.members[0]!.token, offLobby.lobbyId))).toBe('mediationUnavailable');
  });

  it('notifies existing members of a join, and remaining members of a leave', async () => {
    const { service, events } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    const b = await service.registerClient();
    const joined = await service.joinLobby(b.token, lobbyId, 'B');
    expect(joined.ok && joined.value).toEqual({ lobbyId, lobbyName: 'L', lobbyMembers: ['Host', 'A', 'B'], host: 'Host' });
    expect(events.take()).toEqual([
      { to: members[0]!.id, kind: 'peerJoined', lobbyId, peerName: 'B' },
      { to: members[1]!.id, kind: 'peerJoined', lobbyId, peerName: 'B' },
    ]);
    await service.removeClient(members[1]!.id);
    expect(events.take()).toEqual([
      { to: members[0]!.id, kind: 'peerLeft', lobbyId, peerName: 'A' },
      { to: b.id, kind: 'peerLeft', lobbyId, peerName: 'A' },
    ]);
    await service.removeClient(members[0]!.id);
    expect(events.take()).toEqual([{ to: b.id, kind: 'lobbyClosed', lobbyId, lobbyName: 'L' }]);
    expect(service.counts()).toMatchObject({ lobbies: 0, clients: 1 });
    expect(await service.lobbyOf(b.id)).toBeUndefined();
  });

  it('sends chat to every member, sender included, stamped with the clock; ignores non-members', async () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    const outsider = await service.registerClient();
    expect(await service.sendChat(outsider.token, lobbyId, 'hi')).toBe(false);
    expect(await service.sendChat(members[1]!.token, 'OTHER', 'hi')).toBe(false);
    expect(await service.sendChat('nope', lobbyId, 'hi')).toBe(false);
    expect(await service.sendChat(members[1]!.token, lobbyId, 'hi')).toBe(true);
    const message = { timestamp: clock.now(), senderName: 'A', message: 'hi' };
    expect(events.take()).toEqual(members.map((member) => ({ to: member.id, kind: 'chat', lobbyId, message })));
  });
});

describe('LobbyService over a shared store', () => {
  it('gives clients random UUID ids, not counters', async () => {
    const { service } = setup();
    const ids = [(await service.registerClient()).id, (await service.registerClient()).id];
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('two services over one store act on the same lobbies: one creates, the other joins, chats and closes it', async () => {
    const clock = new ManualClock();
    const events = new Recorder();
    const store = new MemoryLobbyStore();
    const one = new LobbyService({ clock, delivery: events, store, timing: TIMING });
    const two = new LobbyService({ clock, delivery: events, store, timing: TIMING });
    const host = await one.registerClient();
    const guest = await two.registerClient();
    const created = await one.createLobby(host.token, { hostName: 'H', lobbyName: 'L', isPublic: true, maxMembers: 2 });
    if (!created.ok) throw new Error(created.error);
    const { lobbyId } = created.value;
    expect(await two.publicLobbies()).toEqual([{ name: 'L', id: lobbyId, currentMembers: 1, maxMembers: 2 }]);
    expect(await two.joinLobby(guest.token, lobbyId, 'G')).toEqual({
      ok: true,
      value: { lobbyId, lobbyName: 'L', lobbyMembers: ['H', 'G'], host: 'H' },
    });
    const third = await one.registerClient();
    expect(await one.joinLobby(third.token, lobbyId, 'T')).toEqual({ ok: false, error: 'lobbyFull' });
    expect(await two.sendChat(guest.token, lobbyId, 'hi')).toBe(true);
    await one.removeClient(host.id);
    expect(events.take().map((event) => [event.to, event.kind])).toEqual([
      [host.id, 'peerJoined'],
      [host.id, 'chat'],
      [guest.id, 'chat'],
      [guest.id, 'lobbyClosed'],
    ]);
    expect(await two.lobbyOf(guest.id)).toBeUndefined();
    expect(store.size).toBe(0);
  });
});

describe('LobbyService: mediation', () => {
  it('runs the success path: collect, peersConnection_start (host gets all, members get host), success, closed', async () => {
    const { service, events, clock, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    expect((await service.startMediation(host.token, lobbyId)).ok).toBe(true);
    expect(events.take()).toEqual(members.map((member) => ({ to: member.id, kind: 'udpRequested', lobbyId })));
    expect(service.counts()).toMatchObject({ mediations: 1, timers: 2 });

    expect(await service.recordUdpAddress(a.token, endpoint(2001))).toBe(true);
    expect(await service.recordUdpAddress(host.token, endpoint(2000))).toBe(true);
    // A repeat before capture completes replaces the address.
    expect(await service.recordUdpAddress(b.token, endpoint(2002))).toBe(true);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'peersStart', peers: [endpoint(2001), endpoint(2002)] },
      { to: a.id, kind: 'peersStart', peers: [endpoint(2000)] },
      { to: b.id, kind: 'peersStart', peers: [endpoint(2000)] },
    ]);
    expect(service.counts().timers).toBe(1);

    // Duplicates after capture are ignored.
    expect(await service.recordUdpAddress(a.token, endpoint(9999))).toBe(false);
    expect(events.take()).toEqual([]);
    expect(service.counts().timers).toBe(1);

    await advance(TIMING.connectTimeoutMs - 1);
    expect(await service.reportPeersConnected(a.token)).toBe(true);
    expect(await service.reportPeersConnected(a.token)).toBe(true);
    expect(await service.reportPeersConnected(host.token)).toBe(true);
    expect(events.take()).toEqual([]);
    expect(await service.reportPeersConnected(b.token)).toBe(true);
    expect(events.take()).toEqual([
      ...members.map((member) => ({ to: member.id, kind: 'succeeded' })),
      ...members.map((member) => ({ to: member.id, kind: 'lobbyClosed', lobbyId, lobbyName: 'L' })),
    ]);
    expect(events.outcomes).toEqual(['succeeded']);
    expect(service.counts()).toEqual({ clients: 3, lobbies: 0, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
    // Members are free again.
    expect((await service.createLobby(a.token, { hostName: 'A', lobbyName: 'again', isPublic: true, maxMembers: 2 })).ok).toBe(true);
  });

  it('reminds only the members whose address is missing, every interval', async () => {
    const { service, events, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    await service.startMediation(host.token, lobbyId);
    events.take();
    await advance(TIMING.connectRequestIntervalMs - 1);
    expect(events.take()).toEqual([]);
    await advance(1);
    expect(events.take().map((event) => event.to)).toEqual([host.id, a.id, b.id]);
    await service.recordUdpAddress(a.token, endpoint(1));
    await advance(TIMING.connectRequestIntervalMs);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'udpRequested', lobbyId },
      { to: b.id, kind: 'udpRequested', lobbyId },
    ]);
    await service.recordUdpAddress(host.token, endpoint(2));
    await advance(TIMING.connectRequestIntervalMs * 2);
    expect(events.take()).toEqual([
      { to: b.id, kind: 'udpRequested', lobbyId },
      { to: b.id, kind: 'udpRequested', lobbyId },
    ]);
    await service.recordUdpAddress(b.token, endpoint(3));
    events.take();
    await advance(TIMING.connectRequestIntervalMs * 2);
    expect(events.take()).toEqual([]);
  });

  it('aborts on the server-connect timeout; the lobby survives unlocked', async () => {
    const { service, events, clock, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    await service.startMediation(members[0]!.token, lobbyId);
    await service.recordUdpAddress(members[0]!.token, endpoint(1));
    await advance(TIMING.serverConnectTimeoutMs);
    const aborts = events.take().filter((event) => event.kind === 'aborted');
    expect(aborts).toEqual(members.map((member) => ({ to: member.id, kind: 'aborted', cause: 'serverConnectTimeout' })));
    expect(events.outcomes).toEqual(['serverConnectTimeout']);
    expect(service.counts()).toMatchObject({ lobbies: 1, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
    const joiner = await service.registerClient();
    expect((await service.joinLobby(joiner.token, lobbyId, 'J')).ok).toBe(true);
    // UDP after the abort is ignored.
    expect(await service.recordUdpAddress(members[1]!.token, endpoint(2))).toBe(false);
  });

  it('a new attempt captures every address afresh, even from the same endpoints', async () => {
    const { service, events, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    const [host, a] = members as [Member, Member];
    await service.startMediation(host.token, lobbyId);
    await service.recordUdpAddress(host.token, endpoint(1000));
    await service.recordUdpAddress(a.token, endpoint(1001));
    await advance(TIMING.connectTimeoutMs);
    expect(events.outcomes).toEqual(['connectTimeout']);
    events.take();

    expect((await service.startMediation(host.token, lobbyId)).ok).toBe(true);
    expect(await service.recordUdpAddress(host.token, endpoint(1000))).toBe(true);
    // The member's address from the last attempt does not count: it is reminded and must send again.
    expect(events.take().filter((event) => event.kind === 'peersStart')).toEqual([]);
    await advance(TIMING.connectRequestIntervalMs);
    expect(events.take()).toEqual([{ to: a.id, kind: 'udpRequested', lobbyId }]);
    expect(await service.recordUdpAddress(a.token, endpoint(1001))).toBe(true);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'peersStart', peers: [endpoint(1001)] },
      { to: a.id, kind: 'peersStart', peers: [endpoint(1000)] },
    ]);
  });

  it('after a member leaves mid-collection, the next attempt needs every packet again', async () => {
    const { service, events, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    await service.startMediation(host.token, lobbyId);
    await service.recordUdpAddress(a.token, endpoint(1));
    await service.removeClient(b.id);
    expect(events.outcomes).toEqual(['membersChanged']);
    // A is free to take part in a new attempt in the same lobby, which needs its packet again.
    expect((await service.startMediation(host.token, lobbyId)).ok).toBe(true);
    await service.recordUdpAddress(host.token, endpoint(2));
    events.take();
    await advance(TIMING.connectRequestIntervalMs);
    expect(events.take()).toEqual([{ to: a.id, kind: 'udpRequested', lobbyId }]);
  });

  it('aborts on the connect timeout', async () => {
    const { service, events, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    await service.startMediation(members[0]!.token, lobbyId);
    for (const [i, member] of members.entries()) await service.recordUdpAddress(member.token, endpoint(i));
    await service.reportPeersConnected(members[0]!.token);
    events.take();
    await advance(TIMING.connectTimeoutMs);
    expect(events.take()).toEqual(members.map((member) => ({ to: member.id, kind: 'aborted', cause: 'connectTimeout' })));
    expect(service.counts()).toMatchObject({ lobbies: 1, mediations: 0, timers: 0 });
    expect(await service.reportPeersConnected(members[1]!.token)).toBe(false);
    expect((await service.startMediation(members[0]!.token, lobbyId)).ok).toBe(true);
  });

  it('aborts with "Lobby members changed." after peerLeft, and sends no spurious abort later', async () => {
    const { service, events, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    await service.startMediation(host.token, lobbyId);
    events.take();
    await service.removeClient(b.id);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'peerLeft', lobbyId, peerName: 'B' },
      { to: a.id, kind: 'peerLeft', lobbyId, peerName: 'B' },
      { to: host.id, kind: 'aborted', cause: 'membersChanged' },
      { to: a.id, kind: 'aborted', cause: 'membersChanged' },
    ]);
    expect(service.counts()).toMatchObject({ timers: 0, mediations: 0 });
    const c = await service.registerClient();
    await service.joinLobby(c.token, lobbyId, 'C');
    await service.removeClient(c.id);
    await advance(TIMING.serverConnectTimeoutMs * 2);
    expect(events.take().some((event) => event.kind === 'aborted')).toBe(false);
  });

  it('aborts when a member leaves during the connect stage too', async () => {
    const { service, events } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A', 'B']);
    await service.startMediation(members[0]!.token, lobbyId);
    for (const [i, member] of members.entries()) await service.recordUdpAddress(member.token, endpoint(i));
    events.take();
    await service.removeClient(members[2]!.id);
    expect(events.take().filter((event) => event.kind === 'aborted')).toHaveLength(2);
    expect(events.outcomes).toEqual(['membersChanged']);
    expect(service.counts().timers).toBe(0);
  });

  it('the host leaving mid-mediation closes the lobby and cancels every timer', async () => {
    const { service, events, clock, advance } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A', 'B']);
    await service.startMediation(members[0]!.token, lobbyId);
    events.take();
    await service.removeClient(members[0]!.id);
    expect(events.take()).toEqual(
      members.slice(1).map((member) => ({ to: member.id, kind: 'lobbyClosed', lobbyId, lobbyName: 'L' })),
    );
    expect(events.outcomes).toEqual(['hostLeft']);
    expect(service.counts()).toEqual({ clients: 2, lobbies: 0, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
    await advance(TIMING.serverConnectTimeoutMs * 2);
    expect(events.take()).toEqual([]);
  });

  it('ignores UDP and success reports from clients not in a mediation', async () => {
    const { service, events } = setup();
    const { members } = await lobby(service, events, ['Host', 'A']);
    const loner = await service.registerClient();
    expect(await service.recordUdpAddress(loner.token, endpoint(1))).toBe(false);
    expect(await service.recordUdpAddress('nope', endpoint(1))).toBe(false);
    expect(await service.recordUdpAddress(members[0]!.token, endpoint(1))).toBe(false);
    expect(await service.reportPeersConnected(members[0]!.token)).toBe(false);
    expect(await service.reportPeersConnected('nope')).toBe(false);
  });

  it('dispose cancels every timer and forgets everything', async () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = await lobby(service, events, ['Host', 'A']);
    await service.startMediation(members[0]!.token, lobbyId);
    await service.dispose();
    expect(service.counts()).toEqual({ clients: 0, lobbies: 0, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
  });
});

describe('LobbyService: random operation sequences', () => {
  type Op =
    | { kind: 'register' }
    | { kind: 'remove' | 'create' | 'start' | 'udp' | 'success' | 'chat'; who: number }
    | { kind: 'join'; who: number; lobby: number; name: number }
    | { kind: 'advance'; ms: number };
  const who = fc.nat({ max: 9 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.constant<Op>({ kind: 'register' }),
    fc.record({ kind: fc.constantFrom('remove', 'create', 'start', 'udp', 'success', 'chat'), who }) as fc.Arbitrary<Op>,
    fc.record({ kind: fc.constant('join'), who, lobby: fc.nat({ max: 4 }), name: fc.nat({ max: 3 }) }) as fc.Arbitrary<Op>,
    fc.record({ kind: fc.constant('advance'), ms: fc.integer({ min: 0, max: 40_000 }) }) as fc.Arbitrary<Op>,
  );

  it('keeps its invariants and ends with nothing once every client is gone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 120 }), async (ops) => {
        const { service, events, clock, advance } = setup();
        const clients: Member[] = [];
        const lobbyIds: string[] = [];
        const live = new Set<ClientId>();
        for (const step of ops) {
          const client = 'who' in step ? clients[step.who % Math.max(1, clients.length)] : undefined;
          switch (step.kind) {
            case 'register': {
              const registered = await service.registerClient();
              clients.push(registered);
              live.add(registered.id);
              break;
            }
            case 'remove':
              if (client) {
                await service.removeClient(client.id);
                live.delete(client.id);
              }
              break;
            case 'create':
              if (client) {
                const created = await service.createLobby(client.token, { hostName: 'H', lobbyName: 'L', isPublic: true, maxMembers: 3 });
                if (created.ok) lobbyIds.push(created.value.lobbyId);
              }
              break;
            case 'join':
              if (client && lobbyIds.length > 0) await service.joinLobby(client.token, lobbyIds[step.lobby % lobbyIds.length]!, `P${step.name}`);
              break;
            case 'start':
              if (client) {
                const lobbyId = await service.lobbyOf(client.id);
                if (lobbyId) await service.startMediation(client.token, lobbyId);
              }
              break;
            case 'udp':
              if (client) await service.recordUdpAddress(client.token, endpoint(clients.indexOf(client) + 1));
              break;
            case 'success':
              if (client) await service.reportPeersConnected(client.token);
              break;
            case 'chat':
              if (client) await service.sendChat(client.token, await service.lobbyOf(client.id) ?? 'none', 'hi');
              break;
            case 'advance':
              await advance(step.ms);
              break;
          }
          const counts = service.counts();
          expect(counts.clients).toBe(live.size);
          expect(counts.timers).toBeLessThanOrEqual(2 * counts.mediations);
          if (counts.mediations === 0) expect(counts.timers).toBe(0);
          expect(clock.pending).toBe(counts.timers);
          for (const event of events.take()) expect(live.has(event.to)).toBe(true);
        }
        for (const client of clients) await service.removeClient(client.id);
        expect(service.counts()).toEqual({ clients: 0, lobbies: 0, mediations: 0, timers: 0 });
        expect(clock.pending).toBe(0);
      }),
      { numRuns: runs(300) },
    );
  });
});
