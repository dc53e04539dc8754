// The lobby wire without sockets: which server message each client gets, in which order, for
// what it sent; what is ignored and how it is counted. Orion's strings are spelled out here on
// purpose: they are the wire contract (the lobby protocol spec), not whatever the catalogue says.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { LocalDelivery, type Inbox } from '../../src/core/delivery.js';
import { LobbyService, type ClientId, type LobbyEvent } from '../../src/core/lobbies/index.js';
import { decodeMessage, encodeMessage } from '../../src/fronts/lobby/codec.js';
import { createLobbyMetrics } from '../../src/fronts/lobby/metrics.js';
import { LobbyWire, mediationObserver, UDP_MAX_DATAGRAM } from '../../src/fronts/lobby/wire.js';

const UDP_PORT = 5990;
const TIMING = { serverConnectTimeoutMs: 60_000, connectRequestIntervalMs: 10_000, connectTimeoutMs: 30_000 };

interface Sent {
  to: string;
  method: string;
  payload: Record<string, unknown>;
}

interface Client {
  readonly name: string;
  readonly id: ClientId;
  readonly token: string;
}

/**
 * A wire over a real LobbyService with a manual clock; every frame any client is sent lands in
 * one log, in order. Every step is awaited so the tests read the same over a promise-returning core.
 */
function harness(options: { mediationAvailable?: boolean } = {}) {
  const clock = new ManualClock();
  const registry = new Registry();
  const delivery = new LocalDelivery<LobbyEvent>();
  const logger = pino({ level: 'silent' });
  const metrics = createLobbyMetrics(registry, () => service.counts());
  const service = new LobbyService({ clock, delivery, observer: mediationObserver(metrics, logger), timing: TIMING, ...options });
  const wire = new LobbyWire({ metrics, logger, udpPort: () => UDP_PORT }, service);
  const inboxes = new Map<ClientId, Inbox<LobbyEvent>>();
  const log: Sent[] = [];
  const settle = async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await service.settled();
  };
  const record = (name: string, frame: string) => {
    const decoded = decodeMessage(frame);
    if (!decoded.ok) throw new Error(`the wire sent an undecodable frame: ${frame}`);
    log.push({ to: name, method: decoded.method, payload: decoded.payload });
  };

  /** As the WebSocket glue does: register, attach the connection under its id, send the welcome. */
  const connect = async (name: string): Promise<Client> => {
    const { id, welcome } = await wire.connected();
    const inbox: Inbox<LobbyEvent> = (event) => record(name, wire.frame(event));
    inboxes.set(id, inbox);
    delivery.attach(id, inbox);
    record(name, welcome);
    await settle();
    const registered = log.findLast((sent) => sent.to === name && sent.method === 'client_registered');
    return { name, id, token: String(registered?.payload.token) };
  };

  return {
    clock,
    wire,
    service: wire.service,
    connect,
    /** Every frame sent since the last take(), oldest first. */
    take: (): Sent[] => log.splice(0),
    /** A WebSocket message, as a client would send it. */
    ws: async (method: string, payload: object) => {
      await wire.message(encodeMessage(method, payload));
      await settle();
    },
    raw: async (data: string | Uint8Array) => {
      await wire.message(data);
      await settle();
    },
    udp: async (data: string | Uint8Array, from: Endpoint) => {
      await wire.datagram(typeof data === 'string' ? Buffer.from(data) : data, from);
      await settle();
    },
    /** As the WebSocket glue does on close: detach, then tell the wire. */
    disconnect: async (client: Client) => {
      const inbox = inboxes.get(client.id);
      if (inbox) delivery.detach(client.id, inbox);
      await wire.disconnected(client.id);
      await settle();
    },
    advance: async (ms: number) => {
      clock.advance(ms);
      await settle();
    },
    invalid: async (transport: string, reason: string): Promise<number> => {
      const metric = await registry.getSingleMetric('noray_lobby_invalid_messages_total')?.get();
      return metric?.values.find((v) => v.labels.transport === transport && v.labels.reason === reason)?.value ?? 0;
    },
    counter: async (name: string, labels: Record<string, string> = {}): Promise<number> => {
      const metric = await registry.getSingleMetric(name)?.get();
      const matching = metric?.values.filter((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value));
      return matching?.reduce((sum, v) => sum + v.value, 0) ?? 0;
    },
  };
}

type Harness = ReturnType<typeof harness>;

/** A host and joined members, in join order; the log is emptied. */
async function lobbyOf(h: Harness, names: string[]): Promise<{ lobbyId: string; members: Client[] }> {
  const members: Client[] = [];
  for (const name of names) members.push(await h.connect(name));
  const [host, ...others] = members as [Client, ...Client[]];
  const created = await h.service.createLobby(host.token, { hostName: host.name, lobbyName: 'L', isPublic: true, maxMembers: 8 });
  if (!created.ok) throw new Error(created.error);
  for (const member of others) {
    const joined = await h.service.joinLobby(member.token, created.value.lobbyId, member.name);
    if (!joined.ok) throw new Error(joined.error);
  }
  h.take();
  return { lobbyId: created.value.lobbyId, members };
}

/** Starts mediation and sends every member's UDP packet from port 40000 + its index; the log is emptied. */
async function mediated(h: Harness, lobbyId: string, members: Client[]): Promise<void> {
  const started = await h.service.startMediation((members[0] as Client).token, lobbyId);
  if (!started.ok) throw new Error(started.error);
  for (const [index, member] of members.entries()) {
    await h.udp(encodeMessage('ptpMediation_connect', { token: member.token }), { address: '203.0.113.9', port: 40_000 + index });
  }
  h.take();
}

describe('lobby wire: clients', () => {
  it('greets a new client with client_registered {token}, to it alone; the token is its secret', async () => {
    const h = harness();
    const alice = await h.connect('alice');
    const bob = await h.connect('bob');
    expect(h.take()).toEqual([
      { to: 'alice', method: 'client_registered', payload: { token: alice.token } },
      { to: 'bob', method: 'client_registered', payload: { token: bob.token } },
    ]);
    expect(alice.token).not.toBe(bob.token);
    expect(await h.service.clientIdOf(alice.token)).toBe(alice.id);
  });

  it('tells existing members lobby_peerConnect on a join, not the joiner', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    const b = await h.connect('B');
    h.take();
    expect((await h.service.joinLobby(b.token, lobbyId, 'B')).ok).toBe(true);
    expect(h.take()).toEqual(
      members.map((member) => ({ to: member.name, method: 'lobby_peerConnect', payload: { lobbyId, peerName: 'B' } })),
    );
  });

  it('a member disconnecting: lobby_peerDisconnect to the rest; the host disconnecting: lobby_closed to the rest', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A', 'B']);
    const [host, a] = members as [Client, Client, Client];
    await h.disconnect(a);
    expect(h.take()).toEqual([
      { to: 'Host', method: 'lobby_peerDisconnect', payload: { lobbyId, peerName: 'A' } },
      { to: 'B', method: 'lobby_peerDisconnect', payload: { lobbyId, peerName: 'A' } },
    ]);
    await h.disconnect(host);
    expect(h.take()).toEqual([{ to: 'B', method: 'lobby_closed', payload: { lobbyId, lobbyName: 'L' } }]);
    expect(h.service.counts()).toMatchObject({ clients: 1, lobbies: 0 });
    // A disconnected client is sent nothing, even if its token is still used by someone.
    await h.ws('lobby_messaging_send', { token: a.token, lobbyId, message: 'ghost' });
    expect(h.take()).toEqual([]);
  });
});

describe('lobby wire: WebSocket method table', () => {
  it('lobby_messaging_send reaches every member, sender included, stamped with the clock and the sender name', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A', 'B']);
    await h.ws('lobby_messaging_send', { token: (members[1] as Client).token, lobbyId, message: 'hello there' });
    const message = { timestamp: h.clock.now(), senderName: 'A', message: 'hello there' };
    expect(h.take()).toEqual(
      members.map((member) => ({ to: member.name, method: 'lobby_messaging_received', payload: { lobbyId, message } })),
    );
  });

  it('names the client by the token in the payload, whichever socket the message came on', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    // The wire is never told the socket: the token alone says who speaks.
    await h.ws('lobby_messaging_send', { token: (members[0] as Client).token, lobbyId, message: 'from the host' });
    expect(h.take().map((sent) => (sent.payload.message as { senderName: string }).senderName)).toEqual(['Host', 'Host']);
  });

  it('ignores and counts by reason: malformed frames, unknown methods, invalid payloads, refused messages', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    const outsider = await h.connect('outsider');
    h.take();
    for (const frame of ['', 'nocolon', 'lobby_messaging_send:!!!!', 'x:W10=', Buffer.from([0xff, 0xfe, 0x3a])]) await h.raw(frame);
    await h.raw('lobby_messaging_send:' + 'A'.repeat(70 * 1024));
    await h.ws('ptpMediation_connect', { token: outsider.token }); // a UDP method over WebSocket
    await h.ws('lobby_unknown', {});
    await h.ws('lobby_messaging_send', { token: (members[1] as Client).token, lobbyId, message: '' });
    await h.ws('lobby_messaging_send', { token: (members[1] as Client).token, lobbyId, message: 'x'.repeat(251) });
    await h.ws('lobby_messaging_send', { token: (members[1] as Client).token, lobbyId, message: 42 });
    await h.ws('ptpMediation_peersConnection_success', {});
    await h.ws('lobby_messaging_send', { token: outsider.token, lobbyId, message: 'not a member' });
    await h.ws('lobby_messaging_send', { token: (members[1] as Client).token, lobbyId: 'ZZZZZ', message: 'wrong lobby' });
    await h.ws('lobby_messaging_send', { token: 'unknown', lobbyId, message: 'forged' });
    await h.ws('ptpMediation_peersConnection_success', { token: (members[0] as Client).token }); // no mediation
    expect(h.take()).toEqual([]);
    expect(await h.invalid('ws', 'malformed')).toBe(6);
    expect(await h.invalid('ws', 'unknown_method')).toBe(2);
    expect(await h.invalid('ws', 'invalid_payload')).toBe(4);
    expect(await h.invalid('ws', 'rejected')).toBe(4);
  });
});

describe('lobby wire: UDP method table', () => {
  it('takes only ptpMediation_connect with a token, never answers, and counts the rest by reason', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    const from = { address: '203.0.113.9', port: 40_000 };
    await h.udp(encodeMessage('ptpMediation_connect', { token: (members[0] as Client).token }), from); // before mediation
    expect((await h.service.startMediation((members[0] as Client).token, lobbyId)).ok).toBe(true);
    h.take();
    for (const datagram of ['', 'garbage', Buffer.alloc(UDP_MAX_DATAGRAM + 1, 0x41)]) await h.udp(datagram, from);
    await h.udp(encodeMessage('lobby_messaging_send', { token: (members[0] as Client).token, lobbyId, message: 'hi' }), from);
    await h.udp(encodeMessage('ptpMediation_connect', { token: 5 }), from);
    await h.udp(encodeMessage('ptpMediation_connect', { token: 'unknown' }), from);
    expect(h.take()).toEqual([]);
    expect(await h.invalid('udp', 'malformed')).toBe(3);
    expect(await h.invalid('udp', 'unknown_method')).toBe(1);
    expect(await h.invalid('udp', 'invalid_payload')).toBe(1);
    expect(await h.invalid('udp', 'rejected')).toBe(2);
  });
});

describe('lobby wire: peer-to-peer mediation', () => {
  it('start: ptpMediation_send {port} to every member; reminders only to those whose packet is missing', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A', 'B']);
    expect((await h.service.startMediation((members[0] as Client).token, lobbyId)).ok).toBe(true);
    expect(h.take()).toEqual(members.map((member) => ({ to: member.name, method: 'ptpMediation_send', payload: { port: UDP_PORT } })));
    await h.udp(encodeMessage('ptpMediation_connect', { token: (members[1] as Client).token }), { address: '203.0.113.9', port: 1 });
    await h.advance(TIMING.connectRequestIntervalMs);
    expect(h.take().map((sent) => [sent.to, sent.method])).toEqual([
      ['Host', 'ptpMediation_send'],
      ['B', 'ptpMediation_send'],
    ]);
  });

  it('capture complete: the host gets every other member in join order, each other member gets the host', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A', 'B']);
    expect((await h.service.startMediation((members[0] as Client).token, lobbyId)).ok).toBe(true);
    h.take();
    // Out of join order, and the host's first packet superseded by a second from a new port.
    const packet = (member: Client, port: number) =>
      h.udp(encodeMessage('ptpMediation_connect', { token: member.token }), { address: '198.51.100.1', port });
    const [host, a, b] = members as [Client, Client, Client];
    await packet(b, 3000);
    await packet(host, 1000);
    await packet(host, 1001);
    expect(h.take()).toEqual([]);
    await packet(a, 2000);
    expect(h.take()).toEqual([
      {
        to: 'Host',
        method: 'ptpMediation_peersConnection_start',
        payload: {
          peers: [
            { ip: '198.51.100.1', port: 2000 },
            { ip: '198.51.100.1', port: 3000 },
          ],
        },
      },
      { to: 'A', method: 'ptpMediation_peersConnection_start', payload: { peers: [{ ip: '198.51.100.1', port: 1001 }] } },
      { to: 'B', method: 'ptpMediation_peersConnection_start', payload: { peers: [{ ip: '198.51.100.1', port: 1001 }] } },
    ]);
    // A duplicate after capture is refused, not answered again.
    await packet(b, 3000);
    expect(h.take()).toEqual([]);
    expect(await h.invalid('udp', 'rejected')).toBe(1);
  });

  it('everyone connected: ptpMediation_success {} then lobby_closed, to each member in that order', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    await mediated(h, lobbyId, members);
    await h.ws('ptpMediation_peersConnection_success', { token: (members[1] as Client).token });
    expect(h.take()).toEqual([]);
    await h.ws('ptpMediation_peersConnection_success', { token: (members[0] as Client).token });
    const sent = h.take();
    for (const member of members) {
      expect(sent.filter((s) => s.to === member.name)).toEqual([
        { to: member.name, method: 'ptpMediation_success', payload: {} },
        { to: member.name, method: 'lobby_closed', payload: { lobbyId, lobbyName: 'L' } },
      ]);
    }
    expect(sent).toHaveLength(4);
    expect(await h.counter('noray_lobby_mediations_started_total')).toBe(1);
    expect(await h.counter('noray_lobby_mediations_succeeded_total')).toBe(1);
  });

  it('aborts with Orion\'s reasons, word for word', async () => {
    const aborted = (sent: Sent[]) => sent.filter((s) => s.method === 'ptpMediation_aborted').map((s) => [s.to, s.payload]);

    // The UDP packets do not all arrive in time.
    const h1 = harness();
    const one = await lobbyOf(h1, ['Host', 'A']);
    expect((await h1.service.startMediation((one.members[0] as Client).token, one.lobbyId)).ok).toBe(true);
    await h1.advance(TIMING.serverConnectTimeoutMs);
    const udpTimeout = { abortReason: 'Peer-to-peer Mediation timed out waiting for peers to send UDP packets to server.' };
    expect(aborted(h1.take())).toEqual([
      ['Host', udpTimeout],
      ['A', udpTimeout],
    ]);

    // The members do not all report a connection in time.
    const h2 = harness();
    const two = await lobbyOf(h2, ['Host', 'A']);
    await mediated(h2, two.lobbyId, two.members);
    await h2.advance(TIMING.connectTimeoutMs);
    const connectTimeout = { abortReason: 'Peer-to-peer Mediation timed out waiting for peers to connect to one another.' };
    expect(aborted(h2.take())).toEqual([
      ['Host', connectTimeout],
      ['A', connectTimeout],
    ]);

    // A member leaves: its lobby_peerDisconnect comes first.
    const h3 = harness();
    const three = await lobbyOf(h3, ['Host', 'A', 'B']);
    expect((await h3.service.startMediation((three.members[0] as Client).token, three.lobbyId)).ok).toBe(true);
    h3.take();
    await h3.disconnect(three.members[2] as Client);
    expect(h3.take().map((s) => [s.to, s.method, s.payload])).toEqual([
      ['Host', 'lobby_peerDisconnect', { lobbyId: three.lobbyId, peerName: 'B' }],
      ['A', 'lobby_peerDisconnect', { lobbyId: three.lobbyId, peerName: 'B' }],
      ['Host', 'ptpMediation_aborted', { abortReason: 'Lobby members changed.' }],
      ['A', 'ptpMediation_aborted', { abortReason: 'Lobby members changed.' }],
    ]);

    expect(await h1.counter('noray_lobby_mediations_aborted_total', { reason: 'serverConnectTimeout' })).toBe(1);
    expect(await h2.counter('noray_lobby_mediations_aborted_total', { reason: 'connectTimeout' })).toBe(1);
    expect(await h3.counter('noray_lobby_mediations_aborted_total', { reason: 'membersChanged' })).toBe(1);
  });

  it('the host leaving mid-mediation closes the lobby for the others (no abort)', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    expect((await h.service.startMediation((members[0] as Client).token, lobbyId)).ok).toBe(true);
    h.take();
    await h.disconnect(members[0] as Client);
    expect(h.take()).toEqual([{ to: 'A', method: 'lobby_closed', payload: { lobbyId, lobbyName: 'L' } }]);
    expect(await h.counter('noray_lobby_mediations_aborted_total', { reason: 'hostLeft' })).toBe(1);
    expect(h.service.counts()).toMatchObject({ lobbies: 0, mediations: 0, timers: 0 });
  });
});

describe('lobby wire: shutdown', () => {
  it('dispose forgets everyone without a word, and nothing is sent afterwards', async () => {
    const h = harness();
    const { lobbyId, members } = await lobbyOf(h, ['Host', 'A']);
    expect((await h.service.startMediation((members[0] as Client).token, lobbyId)).ok).toBe(true);
    h.take();
    await h.wire.dispose();
    await h.advance(TIMING.serverConnectTimeoutMs);
    for (const member of members) await h.disconnect(member);
    await h.ws('lobby_messaging_send', { token: (members[0] as Client).token, lobbyId, message: 'late' });
    expect(h.take()).toEqual([]);
    expect(h.service.counts()).toEqual({ clients: 0, lobbies: 0, mediations: 0, timers: 0 });
  });
});
