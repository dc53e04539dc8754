import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import { ManualClock } from '../../src/core/clock.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import {
  LobbyService,
  type AbortCause,
  type ChatMessage,
  type ClientId,
  type LobbyEvents,
  type MediationOutcome,
} from '../../src/core/lobbies/index.js';

type Event =
  | { to: ClientId; kind: 'peerJoined' | 'peerLeft'; lobbyId: string; peerName: string }
  | { to: ClientId; kind: 'lobbyClosed'; lobbyId: string; lobbyName: string }
  | { to: ClientId; kind: 'chat'; lobbyId: string; message: ChatMessage }
  | { to: ClientId; kind: 'udpRequested'; lobbyId: string }
  | { to: ClientId; kind: 'peersStart'; peers: readonly Endpoint[] }
  | { to: ClientId; kind: 'success' }
  | { to: ClientId; kind: 'aborted'; cause: AbortCause };

class Recorder implements LobbyEvents {
  events: Event[] = [];
  outcomes: MediationOutcome[] = [];
  peerJoined(to: ClientId, lobbyId: string, peerName: string) {
    this.events.push({ to, kind: 'peerJoined', lobbyId, peerName });
  }
  peerLeft(to: ClientId, lobbyId: string, peerName: string) {
    this.events.push({ to, kind: 'peerLeft', lobbyId, peerName });
  }
  lobbyClosed(to: ClientId, lobbyId: string, lobbyName: string) {
    this.events.push({ to, kind: 'lobbyClosed', lobbyId, lobbyName });
  }
  chatReceived(to: ClientId, lobbyId: string, message: ChatMessage) {
    this.events.push({ to, kind: 'chat', lobbyId, message });
  }
  udpAddressRequested(to: ClientId, lobbyId: string) {
    this.events.push({ to, kind: 'udpRequested', lobbyId });
  }
  peersConnectionStart(to: ClientId, peers: readonly Endpoint[]) {
    this.events.push({ to, kind: 'peersStart', peers });
  }
  mediationSucceeded(to: ClientId) {
    this.events.push({ to, kind: 'success' });
  }
  mediationAborted(to: ClientId, cause: AbortCause) {
    this.events.push({ to, kind: 'aborted', cause });
  }
  mediationEnded(_lobbyId: string, outcome: MediationOutcome) {
    this.outcomes.push(outcome);
  }
  take(): Event[] {
    const taken = this.events;
    this.events = [];
    return taken;
  }
  count(to: ClientId, kind: Event['kind']): number {
    return this.events.filter((event) => event.to === to && event.kind === kind).length;
  }
}

const TIMING = { serverConnectTimeoutMs: 60_000, connectRequestIntervalMs: 10_000, connectTimeoutMs: 30_000 };

function setup(options: { mediationAvailable?: boolean; newLobbyId?: () => string; maxLobbies?: number } = {}) {
  const clock = new ManualClock();
  const events = new Recorder();
  const service = new LobbyService({ clock, events, timing: TIMING, ...options });
  return { clock, events, service };
}

type Member = { id: ClientId; token: string };

/** A lobby with a host and members in join order; events of the setup are discarded. */
function lobby(service: LobbyService, events: Recorder, names: string[]): { lobbyId: string; members: Member[] } {
  const host = service.registerClient();
  const created = service.createLobby(host.token, { hostName: names[0] as string, lobbyName: 'L', isPublic: true, maxMembers: 64 });
  if (!created.ok) throw new Error('create failed');
  const members = [host];
  for (const name of names.slice(1)) {
    const member = service.registerClient();
    const joined = service.joinLobby(member.token, created.value.lobbyId, name);
    if (!joined.ok) throw new Error('join failed');
    members.push(member);
  }
  events.take();
  return { lobbyId: created.value.lobbyId, members };
}

const endpoint = (port: number): Endpoint => ({ address: '203.0.113.7', port });

describe('LobbyService: clients and lobbies', () => {
  it('registers clients with distinct tokens and forgets them on removal', () => {
    const { service } = setup();
    const a = service.registerClient();
    const b = service.registerClient();
    expect(a.token).not.toBe(b.token);
    expect(service.clientIdOf(a.token)).toBe(a.id);
    service.removeClient(a.id);
    expect(service.clientIdOf(a.token)).toBeUndefined();
    expect(service.counts().clients).toBe(1);
  });

  it('makes 5-character ids from 0-9A-Z and retries on a collision', () => {
    const ids = ['AAAAA', 'AAAAA', 'BBBBB'];
    const { service } = setup({ newLobbyId: () => ids.shift() ?? 'CCCCC' });
    const request = { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 };
    const first = service.createLobby(service.registerClient().token, request);
    const second = service.createLobby(service.registerClient().token, request);
    expect(first.ok && first.value.lobbyId).toBe('AAAAA');
    expect(second.ok && second.value.lobbyId).toBe('BBBBB');

    const real = setup().service;
    for (let i = 0; i < 200; i++) {
      const created = real.createLobby(real.registerClient().token, request);
      expect(created.ok && created.value.lobbyId).toMatch(/^[0-9A-Z]{5}$/);
    }
    expect(real.counts().lobbies).toBe(200);
  });

  it('refuses creating past maxLobbies as tooManyLobbies, after the token and conflict checks', () => {
    const { service } = setup({ maxLobbies: 2 });
    const request = { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 };
    const clients = [1, 2, 3].map(() => service.registerClient());
    expect(service.createLobby(clients[0]!.token, request).ok).toBe(true);
    expect(service.createLobby(clients[1]!.token, request).ok).toBe(true);
    expect(service.createLobby('nope', request)).toEqual({ ok: false, error: 'unregistered' });
    expect(service.createLobby(clients[0]!.token, request)).toEqual({ ok: false, error: 'alreadyInLobby' });
    expect(service.createLobby(clients[2]!.token, request)).toEqual({ ok: false, error: 'tooManyLobbies' });
    // A slot frees when a lobby closes.
    service.removeClient(clients[0]!.id);
    expect(service.createLobby(clients[2]!.token, request).ok).toBe(true);
  });

  it('refuses unknown tokens as unregistered, before any state check', () => {
    const { service } = setup();
    const request = { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 };
    expect(service.createLobby('nope', request)).toEqual({ ok: false, error: 'unregistered' });
    expect(service.joinLobby('nope', 'XXXXX', 'p')).toEqual({ ok: false, error: 'unregistered' });
    expect(service.startMediation('nope', 'XXXXX')).toEqual({ ok: false, error: 'unregistered' });
  });

  it('checks join conflicts in order: in a lobby, missing, locked, full, name taken', () => {
    const { service, events } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    const outsider = service.registerClient();
    const conflictOf = (result: ReturnType<LobbyService['joinLobby']>) => (result.ok ? 'ok' : result.error);

    expect(conflictOf(service.joinLobby(members[1]!.token, 'ZZZZZ', 'A'))).toBe('alreadyInLobby');
    expect(conflictOf(service.joinLobby(outsider.token, 'ZZZZZ', 'A'))).toBe('lobbyMissing');
    expect(conflictOf(service.joinLobby(outsider.token, lobbyId, 'A'))).toBe('nameTaken');
    expect(service.startMediation(members[0]!.token, lobbyId).ok).toBe(true);
    expect(conflictOf(service.joinLobby(outsider.token, lobbyId, 'A'))).toBe('lobbyLocked');

    const small = setup();
    const host = small.service.registerClient();
    const created = small.service.createLobby(host.token, { hostName: 'H', lobbyName: 'l', isPublic: false, maxMembers: 1 });
    if (!created.ok) throw new Error('create failed');
    const joiner = small.service.registerClient();
    expect(conflictOf(small.service.joinLobby(joiner.token, created.value.lobbyId, 'H'))).toBe('lobbyFull');
    expect(small.service.publicLobbies()).toEqual([]);
  });

  it('checks ptp/start conflicts in order: missing, not host, under way, too few, unavailable', () => {
    const conflictOf = (result: ReturnType<LobbyService['startMediation']>) => (result.ok ? 'ok' : result.error);
    const { service, events } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host']);
    expect(conflictOf(service.startMediation(members[0]!.token, 'ZZZZZ'))).toBe('lobbyMissing');
    expect(conflictOf(service.startMediation(members[0]!.token, lobbyId))).toBe('tooFewMembers');
    const member = service.registerClient();
    service.joinLobby(member.token, lobbyId, 'M');
    expect(conflictOf(service.startMediation(member.token, lobbyId))).toBe('notHost');
    expect(service.startMediation(members[0]!.token, lobbyId).ok).toBe(true);
    expect(conflictOf(service.startMediation(members[0]!.token, lobbyId))).toBe('mediationUnderWay');

    const off = setup({ mediationAvailable: false });
    const offLobby = lobby(off.service, off.events, ['Host', 'M']);
    expect(conflictOf(off.service.startMediation(offLobby.members[0]!.token, offLobby.lobbyId))).toBe('mediationUnavailable');
  });

  it('notifies existing members of a join, and remaining members of a leave', () => {
    const { service, events } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    const b = service.registerClient();
    const joined = service.joinLobby(b.token, lobbyId, 'B');
    expect(joined.ok && joined.value).toEqual({ lobbyId, lobbyName: 'L', lobbyMembers: ['Host', 'A', 'B'], host: 'Host' });
    expect(events.take()).toEqual([
      { to: members[0]!.id, kind: 'peerJoined', lobbyId, peerName: 'B' },
      { to: members[1]!.id, kind: 'peerJoined', lobbyId, peerName: 'B' },
    ]);
    service.removeClient(members[1]!.id);
    expect(events.take()).toEqual([
      { to: members[0]!.id, kind: 'peerLeft', lobbyId, peerName: 'A' },
      { to: b.id, kind: 'peerLeft', lobbyId, peerName: 'A' },
    ]);
    service.removeClient(members[0]!.id);
    expect(events.take()).toEqual([{ to: b.id, kind: 'lobbyClosed', lobbyId, lobbyName: 'L' }]);
    expect(service.counts()).toMatchObject({ lobbies: 0, clients: 1 });
    expect(service.lobbyOf(b.id)).toBeUndefined();
  });

  it('sends chat to every member, sender included, stamped with the clock; ignores non-members', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    const outsider = service.registerClient();
    expect(service.sendChat(outsider.token, lobbyId, 'hi')).toBe(false);
    expect(service.sendChat(members[1]!.token, 'OTHER', 'hi')).toBe(false);
    expect(service.sendChat('nope', lobbyId, 'hi')).toBe(false);
    expect(service.sendChat(members[1]!.token, lobbyId, 'hi')).toBe(true);
    const message = { timestamp: clock.now(), senderName: 'A', message: 'hi' };
    expect(events.take()).toEqual(members.map((member) => ({ to: member.id, kind: 'chat', lobbyId, message })));
  });
});

describe('LobbyService: mediation', () => {
  it('runs the success path: collect, peersConnection_start (host gets all, members get host), success, closed', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    expect(service.startMediation(host.token, lobbyId).ok).toBe(true);
    expect(events.take()).toEqual(members.map((member) => ({ to: member.id, kind: 'udpRequested', lobbyId })));
    expect(service.counts()).toMatchObject({ mediations: 1, timers: 2 });

    expect(service.recordUdpAddress(a.token, endpoint(2001))).toBe(true);
    expect(service.recordUdpAddress(host.token, endpoint(2000))).toBe(true);
    // A repeat before capture completes replaces the address.
    expect(service.recordUdpAddress(b.token, endpoint(2002))).toBe(true);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'peersStart', peers: [endpoint(2001), endpoint(2002)] },
      { to: a.id, kind: 'peersStart', peers: [endpoint(2000)] },
      { to: b.id, kind: 'peersStart', peers: [endpoint(2000)] },
    ]);
    expect(service.counts().timers).toBe(1);

    // Duplicates after capture are ignored.
    expect(service.recordUdpAddress(a.token, endpoint(9999))).toBe(false);
    expect(events.take()).toEqual([]);
    expect(service.counts().timers).toBe(1);

    clock.advance(TIMING.connectTimeoutMs - 1);
    expect(service.reportPeersConnected(a.token)).toBe(true);
    expect(service.reportPeersConnected(a.token)).toBe(true);
    expect(service.reportPeersConnected(host.token)).toBe(true);
    expect(events.take()).toEqual([]);
    expect(service.reportPeersConnected(b.token)).toBe(true);
    expect(events.take()).toEqual([
      ...members.map((member) => ({ to: member.id, kind: 'success' })),
      ...members.map((member) => ({ to: member.id, kind: 'lobbyClosed', lobbyId, lobbyName: 'L' })),
    ]);
    expect(events.outcomes).toEqual(['succeeded']);
    expect(service.counts()).toEqual({ clients: 3, lobbies: 0, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
    // Members are free again.
    expect(service.createLobby(a.token, { hostName: 'A', lobbyName: 'again', isPublic: true, maxMembers: 2 }).ok).toBe(true);
  });

  it('reminds only the members whose address is missing, every interval', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    service.startMediation(host.token, lobbyId);
    events.take();
    clock.advance(TIMING.connectRequestIntervalMs - 1);
    expect(events.take()).toEqual([]);
    clock.advance(1);
    expect(events.take().map((event) => event.to)).toEqual([host.id, a.id, b.id]);
    service.recordUdpAddress(a.token, endpoint(1));
    clock.advance(TIMING.connectRequestIntervalMs);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'udpRequested', lobbyId },
      { to: b.id, kind: 'udpRequested', lobbyId },
    ]);
    service.recordUdpAddress(host.token, endpoint(2));
    clock.advance(TIMING.connectRequestIntervalMs * 2);
    expect(events.take()).toEqual([
      { to: b.id, kind: 'udpRequested', lobbyId },
      { to: b.id, kind: 'udpRequested', lobbyId },
    ]);
    service.recordUdpAddress(b.token, endpoint(3));
    events.take();
    clock.advance(TIMING.connectRequestIntervalMs * 2);
    expect(events.take()).toEqual([]);
  });

  it('aborts on the server-connect timeout; the lobby survives unlocked', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    service.startMediation(members[0]!.token, lobbyId);
    service.recordUdpAddress(members[0]!.token, endpoint(1));
    clock.advance(TIMING.serverConnectTimeoutMs);
    const aborts = events.take().filter((event) => event.kind === 'aborted');
    expect(aborts).toEqual(members.map((member) => ({ to: member.id, kind: 'aborted', cause: 'serverConnectTimeout' })));
    expect(events.outcomes).toEqual(['serverConnectTimeout']);
    expect(service.counts()).toMatchObject({ lobbies: 1, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
    const joiner = service.registerClient();
    expect(service.joinLobby(joiner.token, lobbyId, 'J').ok).toBe(true);
    // UDP after the abort is ignored.
    expect(service.recordUdpAddress(members[1]!.token, endpoint(2))).toBe(false);
  });

  it('a new attempt captures every address afresh, even from the same endpoints', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    const [host, a] = members as [Member, Member];
    service.startMediation(host.token, lobbyId);
    service.recordUdpAddress(host.token, endpoint(1000));
    service.recordUdpAddress(a.token, endpoint(1001));
    clock.advance(TIMING.connectTimeoutMs);
    expect(events.outcomes).toEqual(['connectTimeout']);
    events.take();

    expect(service.startMediation(host.token, lobbyId).ok).toBe(true);
    expect(service.recordUdpAddress(host.token, endpoint(1000))).toBe(true);
    // The member's address from the last attempt does not count: it is reminded and must send again.
    expect(events.take().filter((event) => event.kind === 'peersStart')).toEqual([]);
    clock.advance(TIMING.connectRequestIntervalMs);
    expect(events.take()).toEqual([{ to: a.id, kind: 'udpRequested', lobbyId }]);
    expect(service.recordUdpAddress(a.token, endpoint(1001))).toBe(true);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'peersStart', peers: [endpoint(1001)] },
      { to: a.id, kind: 'peersStart', peers: [endpoint(1000)] },
    ]);
  });

  it('after a member leaves mid-collection, the next attempt needs every packet again', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    service.startMediation(host.token, lobbyId);
    service.recordUdpAddress(a.token, endpoint(1));
    service.removeClient(b.id);
    expect(events.outcomes).toEqual(['membersChanged']);
    // A is free to take part in a new attempt in the same lobby, which needs its packet again.
    expect(service.startMediation(host.token, lobbyId).ok).toBe(true);
    service.recordUdpAddress(host.token, endpoint(2));
    events.take();
    clock.advance(TIMING.connectRequestIntervalMs);
    expect(events.take()).toEqual([{ to: a.id, kind: 'udpRequested', lobbyId }]);
  });

  it('aborts on the connect timeout', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    service.startMediation(members[0]!.token, lobbyId);
    for (const [i, member] of members.entries()) service.recordUdpAddress(member.token, endpoint(i));
    service.reportPeersConnected(members[0]!.token);
    events.take();
    clock.advance(TIMING.connectTimeoutMs);
    expect(events.take()).toEqual(members.map((member) => ({ to: member.id, kind: 'aborted', cause: 'connectTimeout' })));
    expect(service.counts()).toMatchObject({ lobbies: 1, mediations: 0, timers: 0 });
    expect(service.reportPeersConnected(members[1]!.token)).toBe(false);
    expect(service.startMediation(members[0]!.token, lobbyId).ok).toBe(true);
  });

  it('aborts with "Lobby members changed." after peerLeft, and sends no spurious abort later', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A', 'B']);
    const [host, a, b] = members as [Member, Member, Member];
    service.startMediation(host.token, lobbyId);
    events.take();
    service.removeClient(b.id);
    expect(events.take()).toEqual([
      { to: host.id, kind: 'peerLeft', lobbyId, peerName: 'B' },
      { to: a.id, kind: 'peerLeft', lobbyId, peerName: 'B' },
      { to: host.id, kind: 'aborted', cause: 'membersChanged' },
      { to: a.id, kind: 'aborted', cause: 'membersChanged' },
    ]);
    expect(service.counts()).toMatchObject({ timers: 0, mediations: 0 });
    const c = service.registerClient();
    service.joinLobby(c.token, lobbyId, 'C');
    service.removeClient(c.id);
    clock.advance(TIMING.serverConnectTimeoutMs * 2);
    expect(events.take().some((event) => event.kind === 'aborted')).toBe(false);
  });

  it('aborts when a member leaves during the connect stage too', () => {
    const { service, events } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A', 'B']);
    service.startMediation(members[0]!.token, lobbyId);
    for (const [i, member] of members.entries()) service.recordUdpAddress(member.token, endpoint(i));
    events.take();
    service.removeClient(members[2]!.id);
    expect(events.take().filter((event) => event.kind === 'aborted')).toHaveLength(2);
    expect(events.outcomes).toEqual(['membersChanged']);
    expect(service.counts().timers).toBe(0);
  });

  it('the host leaving mid-mediation closes the lobby and cancels every timer', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A', 'B']);
    service.startMediation(members[0]!.token, lobbyId);
    events.take();
    service.removeClient(members[0]!.id);
    expect(events.take()).toEqual(
      members.slice(1).map((member) => ({ to: member.id, kind: 'lobbyClosed', lobbyId, lobbyName: 'L' })),
    );
    expect(events.outcomes).toEqual(['hostLeft']);
    expect(service.counts()).toEqual({ clients: 2, lobbies: 0, mediations: 0, timers: 0 });
    expect(clock.pending).toBe(0);
    clock.advance(TIMING.serverConnectTimeoutMs * 2);
    expect(events.take()).toEqual([]);
  });

  it('ignores UDP and success reports from clients not in a mediation', () => {
    const { service, events } = setup();
    const { members } = lobby(service, events, ['Host', 'A']);
    const loner = service.registerClient();
    expect(service.recordUdpAddress(loner.token, endpoint(1))).toBe(false);
    expect(service.recordUdpAddress('nope', endpoint(1))).toBe(false);
    expect(service.recordUdpAddress(members[0]!.token, endpoint(1))).toBe(false);
    expect(service.reportPeersConnected(members[0]!.token)).toBe(false);
    expect(service.reportPeersConnected('nope')).toBe(false);
  });

  it('dispose cancels every timer and forgets everything', () => {
    const { service, events, clock } = setup();
    const { lobbyId, members } = lobby(service, events, ['Host', 'A']);
    service.startMediation(members[0]!.token, lobbyId);
    service.dispose();
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

  it('keeps its invariants and ends with nothing once every client is gone', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const { service, events, clock } = setup();
        const clients: Member[] = [];
        const lobbyIds: string[] = [];
        const live = new Set<ClientId>();
        for (const step of ops) {
          const client = 'who' in step ? clients[step.who % Math.max(1, clients.length)] : undefined;
          switch (step.kind) {
            case 'register': {
              const registered = service.registerClient();
              clients.push(registered);
              live.add(registered.id);
              break;
            }
            case 'remove':
              if (client) {
                service.removeClient(client.id);
                live.delete(client.id);
              }
              break;
            case 'create':
              if (client) {
                const created = service.createLobby(client.token, { hostName: 'H', lobbyName: 'L', isPublic: true, maxMembers: 3 });
                if (created.ok) lobbyIds.push(created.value.lobbyId);
              }
              break;
            case 'join':
              if (client && lobbyIds.length > 0) service.joinLobby(client.token, lobbyIds[step.lobby % lobbyIds.length]!, `P${step.name}`);
              break;
            case 'start':
              if (client) {
                const lobbyId = service.lobbyOf(client.id);
                if (lobbyId) service.startMediation(client.token, lobbyId);
              }
              break;
            case 'udp':
              if (client) service.recordUdpAddress(client.token, endpoint(client.id));
              break;
            case 'success':
              if (client) service.reportPeersConnected(client.token);
              break;
            case 'chat':
              if (client) service.sendChat(client.token, service.lobbyOf(client.id) ?? 'none', 'hi');
              break;
            case 'advance':
              clock.advance(step.ms);
              break;
          }
          const counts = service.counts();
          expect(counts.clients).toBe(live.size);
          expect(counts.timers).toBeLessThanOrEqual(2 * counts.mediations);
          if (counts.mediations === 0) expect(counts.timers).toBe(0);
          expect(clock.pending).toBe(counts.timers);
          for (const event of events.take()) expect(live.has(event.to)).toBe(true);
        }
        for (const client of clients) service.removeClient(client.id);
        expect(service.counts()).toEqual({ clients: 0, lobbies: 0, mediations: 0, timers: 0 });
        expect(clock.pending).toBe(0);
      }),
      { numRuns: runs(300) },
    );
  });
});
