// The relay rules without sockets: who gets what, in which order, and who is closed with which code.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { LocalDelivery } from '../../src/core/delivery.js';
import { MemoryRoomStore } from '../../src/core/room-store.js';
import { createWsRelayMetrics, type WsRelayLimitReason } from '../../src/fronts/wsrelay/metrics.js';
import {
  LOGGING_IN,
  WsRelayRouter,
  type Delivered,
  type Outgoing,
  type PeerState,
  type RelayPeer,
} from '../../src/fronts/wsrelay/router.js';
import { LimitReporter } from '../../src/ops/limit-reporter.js';
import { PromisedRoomStore } from '../helpers/promised-room-store.js';

/** Records what the router did to it; `wire` is shared by every peer of one setup, in order. */
class FakePeer implements RelayPeer {
  state: PeerState = LOGGING_IN;
  /** Every message sent to this peer, as the router passed it (a Buffer is forwarded unchanged). */
  readonly raw: Outgoing[] = [];
  closedWith: number | null = null;
  logins = 0;
  /** Called from send(), before recording: lets a test end the peer mid-fan-out, as a slow reader is. */
  onSend: (() => void) | null = null;
  /** Messages the router handed over after it had ended this peer (the socket glue would drop them). */
  late = 0;

  constructor(
    readonly name: string,
    private readonly wire: string[],
    readonly ip = '10.0.0.1',
  ) {}

  /** The messages as text. */
  get sent(): string[] {
    return this.raw.map((message) => message.toString());
  }

  send(message: Outgoing): void {
    if (this.ended()) return void this.late++;
    this.onSend?.();
    // Like the socket glue: a peer ended by its own send (too slow) gets nothing more.
    if (this.ended()) return;
    this.raw.push(message);
    this.wire.push(`${this.name} <- ${message.toString()}`);
  }

  ended(): boolean {
    return this.state.kind === 'gone';
  }

  close(code: number): void {
    if (this.closedWith !== null) throw new Error(`${this.name} closed twice`);
    this.closedWith = code;
    this.wire.push(`${this.name} closed ${code}`);
  }

  loggedIn(): void {
    this.logins++;
  }
}

/** `promised`: the router works over a store that answers with promises, as a networked one does. */
function setup(maxRooms = 100, promised = false) {
  const registry = new Registry();
  const logger = pino({ level: 'silent' });
  /** Read at once by the tests, whichever store the router uses. */
  const rooms = new MemoryRoomStore();
  const store = promised ? new PromisedRoomStore(rooms) : rooms;
  const delivery = new LocalDelivery<Delivered>();
  const metrics = createWsRelayMetrics(registry, {
    connections: () => 0,
    rooms: () => rooms.counts().rooms,
    clients: () => rooms.counts().members,
  });
  const limits = new LimitReporter(registry, logger, new ManualClock()).forFront<WsRelayLimitReason>('wsrelay');
  const router = new WsRelayRouter({ rooms: store, delivery, metrics, limits, logger, maxRooms });
  const wire: string[] = [];
  const peer = (name: string) => new FakePeer(name, wire);
  const text = (p: FakePeer, message: string | object) =>
    router.message(p, Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), false);
  const binary = (p: FakePeer, message: string | Buffer) =>
    router.message(p, Buffer.isBuffer(message) ? message : Buffer.from(message), true);
  const server = (name: string, code: string) => {
    const p = peer(name);
    text(p, { action: 'login_server', server_code: code });
    return p;
  };
  const client = (name: string, code: string, id: string) => {
    const p = peer(name);
    text(p, { action: 'login_client', server_code: code, client_id: id });
    return p;
  };
  const counter = async (name: string, label: string, value: string) => {
    const metric = await registry.getSingleMetric(name)!.get();
    return metric.values.find((v) => v.labels[label] === value)?.value ?? 0;
  };
  return {
    router,
    rooms,
    delivery,
    /** Resolves once the promised store has answered everything asked so far. */
    settled: () => (store instanceof PromisedRoomStore ? store.settled() : Promise.resolve()),
    wire,
    peer,
    text,
    binary,
    server,
    client,
    closes: (reason: string) => counter('noray_wsrelay_closes_total', 'reason', reason),
    dropped: (reason: string) => counter('noray_wsrelay_messages_dropped_total', 'reason', reason),
    relayed: (direction: string) => counter('noray_wsrelay_messages_relayed_total', 'direction', direction),
    rejections: (reason: string) => counter('noray_limit_rejections_total', 'reason', reason),
  };
}

const connect = (id: string) => JSON.stringify({ action: 'connect', client_id: id });
const disconnect = (id: string) => JSON.stringify({ action: 'disconnect', client_id: id });

describe('wsrelay router: login', () => {
  it('logs a server in, then tells it exactly about each client', () => {
    const { rooms, wire, server, client } = setup();
    const host = server('host', 'SNEK');
    expect(host.state).toMatchObject({ kind: 'server' });
    expect(host.logins).toBe(1);
    expect(rooms.owner('SNEK')).toBeDefined();
    const phone = client('phone', 'SNEK', '467123746');
    expect(phone.state).toMatchObject({ kind: 'client', clientId: '467123746', code: 'SNEK' });
    expect(phone.logins).toBe(1);
    expect(wire).toEqual(['host <- {"action":"connect","client_id":"467123746"}']);
    expect(rooms.counts()).toEqual({ rooms: 1, members: 1 });
  });

  it('ignores extra fields and a client_id on a server login', () => {
    const { wire, peer, text, client } = setup();
    const host = peer('host');
    text(host, '{"action":"login_server","server_code":"X","client_id":"ignored","extra":[1]}');
    client('phone', 'X', '1');
    expect(wire).toEqual([`host <- ${connect('1')}`]);
  });

  it('accepts a binary first frame holding UTF-8 JSON and refuses one that is not UTF-8', () => {
    const { wire, peer, binary } = setup();
    const host = peer('host');
    binary(host, JSON.stringify({ action: 'login_server', server_code: 'B' }));
    const phone = peer('phone');
    binary(phone, JSON.stringify({ action: 'login_client', server_code: 'B', client_id: 'é' }));
    const bad = peer('bad');
    binary(bad, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(wire).toEqual([`host <- ${connect('é')}`, 'bad closed 1008']);
  });

  it.each([
    ['not JSON', 'login please'],
    ['not an object', '["login_server","X"]'],
    ['an unknown action', '{"action":"login","server_code":"X"}'],
    ['an action in the wrong case', '{"action":"Login_Server","server_code":"X"}'],
    ['no server_code', '{"action":"login_server"}'],
    ['a numeric server_code', '{"action":"login_server","server_code":5}'],
    ['a client without client_id', '{"action":"login_client","server_code":"OPEN"}'],
    ['a client with a numeric client_id', '{"action":"login_client","server_code":"OPEN","client_id":467}'],
  ])('closes %s with 1008 and nothing sent', async (_what, login) => {
    const { wire, peer, text, server, closes } = setup();
    server('host', 'OPEN');
    const bad = peer('bad');
    text(bad, login);
    expect(bad.state).toEqual({ kind: 'gone' });
    expect(bad.logins).toBe(0);
    expect(wire).toEqual(['bad closed 1008']);
    expect(await closes('bad_login')).toBe(1);
  });

  it('closes a server claiming a taken code; the first server is unaffected', async () => {
    const { rooms, wire, server, client, text, closes } = setup();
    const first = server('first', 'CODE');
    const second = server('second', 'CODE');
    expect(second.state).toEqual({ kind: 'gone' });
    expect(second.closedWith).toBe(1008);
    const phone = client('phone', 'CODE', '1');
    text(first, 'still here');
    expect(wire).toEqual(['second closed 1008', `first <- ${connect('1')}`, 'phone <- still here']);
    expect(rooms.counts().rooms).toBe(1);
    expect(phone.state.kind).toBe('client');
    expect(await closes('code_taken')).toBe(1);
  });

  it('closes a client naming an unknown code, without a notice to anyone', async () => {
    const { wire, server, client, closes } = setup();
    server('host', 'OPEN');
    const lost = client('lost', 'NOPE', '1');
    expect(lost.state).toEqual({ kind: 'gone' });
    expect(lost.logins).toBe(0);
    expect(wire).toEqual(['lost closed 1008']);
    expect(await closes('unknown_code')).toBe(1);
  });

  it('lets client ids repeat', () => {
    const { wire, server, client } = setup();
    server('host', 'R');
    client('a', 'R', 'same');
    client('b', 'R', 'same');
    expect(wire).toEqual([`host <- ${connect('same')}`, `host <- ${connect('same')}`]);
  });

  it('refuses a server past maxRooms like a taken code, reported as a limit; a taken code stays code_taken', async () => {
    const { rooms, wire, server, closes, rejections } = setup(1);
    server('a', 'A');
    const refused = server('b', 'B');
    const taken = server('a2', 'A');
    expect(refused.closedWith).toBe(1008);
    expect(taken.closedWith).toBe(1008);
    expect(wire).toEqual(['b closed 1008', 'a2 closed 1008']);
    expect(rooms.counts().rooms).toBe(1);
    expect(await rejections('max_rooms')).toBe(1);
    expect(await closes('max_rooms')).toBe(1);
    expect(await closes('code_taken')).toBe(1);
  });
});

describe('wsrelay router: server to clients', () => {
  it('forwards server messages to every client as received, parsed once for all', async () => {
    const { router, server, client, relayed } = setup();
    const host = server('host', 'T');
    const phones = [client('p1', 'T', '1'), client('p2', 'T', '2')];
    const data = Buffer.from('{ "lap" :  3,\n"x":[1,2.50]}');
    router.message(host, data, false);
    for (const phone of phones) {
      expect(phone.raw).toHaveLength(1);
      // The very bytes received: no re-encoding per client.
      expect(phone.raw[0]).toBe(data);
    }
    expect(await relayed('to_clients')).toBe(2);
  });

  it('targets receiver_id as a string; a number, null or unknown id reaches nobody', async () => {
    const { text, server, client, dropped, relayed } = setup();
    const host = server('host', 'T');
    const a1 = client('a1', 'T', '1');
    const a2 = client('a2', 'T', '1');
    const b = client('b', 'T', '2');
    const forOne = '{"receiver_id":"1","any_json_here":"dont_care"}';
    for (const message of [forOne, '{"receiver_id":1}', '{"receiver_id":null}', '{"receiver_id":"3"}']) text(host, message);
    text(host, '{"receiver_id":"2","n":12345678901234567890}');
    text(host, '"end"');
    expect(a1.sent).toEqual([forOne, '"end"']);
    expect(a2.sent).toEqual([forOne, '"end"']);
    expect(b.sent).toEqual(['{"receiver_id":"2","n":12345678901234567890}', '"end"']);
    expect(await dropped('no_receiver')).toBe(3);
    expect(await relayed('to_clients')).toBe(2 + 1 + 3);
  });

  it('sends non-objects and invalid JSON to every client unchanged', () => {
    const { text, server, client } = setup();
    const host = server('host', 'T');
    const phones = [client('p1', 'T', '1'), client('p2', 'T', '2')];
    const texts = ['[1,2]', '42', 'null', 'not json at all', '{"receiver_id":', '', ' {"a":1} '];
    for (const message of texts) text(host, message);
    for (const phone of phones) expect(phone.sent).toEqual(texts);
  });

  it('keeps the server when nobody hears it', async () => {
    const { wire, text, server, client, dropped } = setup();
    const host = server('host', 'EMPTY');
    text(host, 'nobody hears this');
    text(host, '{"receiver_id":"x"}');
    client('late', 'EMPTY', '1');
    text(host, 'welcome');
    expect(host.state.kind).toBe('server');
    expect(wire).toEqual([`host <- ${connect('1')}`, 'late <- welcome']);
    expect(await dropped('no_receiver')).toBe(2);
  });

  it('keeps fanning out when a client ends in the middle of it', () => {
    const { router, text, server, client } = setup();
    const host = server('host', 'F');
    const phones = ['1', '2', '3'].map((id) => client(`p${id}`, 'F', id));
    const slow = phones[1]!;
    slow.onSend = () => {
      slow.onSend = null;
      if (router.end(slow, 'slow_reader')) slow.close(1006);
    };
    text(host, 'tick');
    expect(phones.map((phone) => phone.sent)).toEqual([['tick'], [], ['tick']]);
    expect(host.sent.at(-1)).toBe(disconnect('2'));
    text(host, 'tock');
    expect(phones.map((phone) => phone.sent)).toEqual([['tick', 'tock'], [], ['tick', 'tock']]);
    expect(slow.late).toBe(0);
  });
});

describe('wsrelay router: clients to the server', () => {
  it("stamps the sender's client_id over any it had, keeping other fields", async () => {
    const { text, server, client, relayed } = setup();
    const host = server('host', 'S');
    const phone = client('phone', 'S', '467');
    text(phone, { steer: -0.5, client_id: 'forged' });
    text(phone, '{"client_id":1,"client_id":2,"a":{"client_id":"inner"}}');
    expect(host.sent.slice(1).map((message) => JSON.parse(message) as unknown)).toEqual([
      { steer: -0.5, client_id: '467' },
      { a: { client_id: 'inner' }, client_id: '467' },
    ]);
    expect(await relayed('to_server')).toBe(2);
  });

  it('keeps integers of any size exact', () => {
    const { text, server, client } = setup();
    const host = server('host', 'N');
    const phone = client('phone', 'N', '9');
    text(phone, '{"big":123456789012345678901234567890,"id":9007199254740993,"neg":-18446744073709551617,"f":1.50}');
    expect(host.sent[1]).toBe(
      '{"big":123456789012345678901234567890,"id":9007199254740993,"neg":-18446744073709551617,"f":1.50,"client_id":"9"}',
    );
  });

  it('drops valid JSON that is not an object and keeps the client', async () => {
    const { text, server, client, dropped } = setup();
    const host = server('host', 'J');
    const phone = client('phone', 'J', '5');
    for (const message of ['[1,2,3]', '"text"', '17', 'null']) text(phone, message);
    text(phone, { ok: true });
    expect(host.sent).toEqual([connect('5'), '{"ok":true,"client_id":"5"}']);
    expect(phone.state.kind).toBe('client');
    expect(await dropped('not_object')).toBe(4);
  });

  it('closes a client sending invalid JSON with 1007, after telling its server', async () => {
    const { rooms, wire, text, server, client, closes } = setup();
    server('host', 'J');
    const phone = client('phone', 'J', '5');
    text(phone, '{"broken":');
    expect(phone.state).toEqual({ kind: 'gone' });
    expect(wire).toEqual([`host <- ${connect('5')}`, `host <- ${disconnect('5')}`, 'phone closed 1007']);
    expect(rooms.counts()).toEqual({ rooms: 1, members: 0 });
    expect(await closes('invalid_json')).toBe(1);
  });

  it('drops binary messages after login in both directions and keeps both', async () => {
    const { wire, text, binary, server, client, dropped } = setup();
    const host = server('host', 'BIN');
    const phone = client('phone', 'BIN', '1');
    binary(phone, '{"a":1}');
    binary(host, '{"b":2}');
    text(phone, { after: 1 });
    text(host, 'after');
    expect(wire).toEqual([`host <- ${connect('1')}`, 'host <- {"after":1,"client_id":"1"}', 'phone <- after']);
    expect(await dropped('binary')).toBe(2);
  });

  it('keeps the order of one sender: connect, its messages, disconnect', () => {
    const { router, text, server, client } = setup();
    const host = server('host', 'O');
    const phone = client('phone', 'O', '1');
    for (let i = 0; i < 5; i++) text(phone, { i });
    router.end(phone, 'closed');
    expect(host.sent).toEqual([
      connect('1'),
      ...Array.from({ length: 5 }, (_, i) => JSON.stringify({ i, client_id: '1' })),
      disconnect('1'),
    ]);
  });
});

describe('wsrelay router: leaving', () => {
  it('tells the server when a client leaves, once', async () => {
    const { router, wire, server, client, closes } = setup();
    server('host', 'L');
    const phone = client('phone', 'L', '1');
    expect(router.end(phone, 'closed')).toBe(true);
    expect(router.end(phone, 'dead')).toBe(false);
    expect(wire).toEqual([`host <- ${connect('1')}`, `host <- ${disconnect('1')}`]);
    // Ending is the router's part, closing the socket the caller's.
    expect(phone.closedWith).toBeNull();
    expect(await closes('closed')).toBe(1);
    expect(await closes('dead')).toBe(0);
  });

  it('says nothing to the server when told not to (shutdown)', () => {
    const { router, wire, server, client } = setup();
    const host = server('host', 'Q');
    const phone = client('phone', 'Q', '1');
    router.end(phone, 'shutdown', false);
    router.end(host, 'shutdown', false);
    expect(wire).toEqual([`host <- ${connect('1')}`]);
  });

  it('closes every client with 1000 and no message when the server leaves, and frees the code', async () => {
    const { router, rooms, wire, text, server, client, closes } = setup();
    const host = server('host', 'BYE');
    const phones = ['1', '2', '3'].map((id) => client(`p${id}`, 'BYE', id));
    wire.length = 0;
    router.end(host, 'closed');
    expect(wire).toEqual(['p1 closed 1000', 'p2 closed 1000', 'p3 closed 1000']);
    for (const phone of phones) {
      expect(phone.state).toEqual({ kind: 'gone' });
      expect(phone.sent).toEqual([]);
    }
    expect(rooms.counts()).toEqual({ rooms: 0, members: 0 });
    expect(await closes('server_left')).toBe(3);
    // A released client ends only once: its own close later counts nothing more.
    expect(router.end(phones[0]!, 'closed')).toBe(false);
    // The code is free again.
    const next = server('next', 'BYE');
    client('p4', 'BYE', '4');
    expect(next.sent).toEqual([connect('4')]);
    text(phones[1]!, 'ignored: gone');
    text(next, 'only p4');
    expect(next.sent).toEqual([connect('4')]);
    for (const phone of phones) expect(phone.late).toBe(0);
  });

  it('ignores messages from a peer that has ended, also while logging in', () => {
    const { router, wire, peer, text } = setup();
    const quiet = peer('quiet');
    expect(router.end(quiet, 'login_timeout')).toBe(true);
    text(quiet, { action: 'login_server', server_code: 'LATE' });
    expect(quiet.logins).toBe(0);
    expect(wire).toEqual([]);
  });
});

describe('wsrelay router over a store that answers with promises', () => {
  it('keeps the order of each sender while its store calls are pending', async () => {
    const { router, rooms, wire, text, server, client, settled, dropped } = setup(100, true);
    const host = server('host', 'P');
    // Sent before the room is open: waits for the login, then reaches nobody.
    text(host, 'early');
    await settled();
    expect(host.state.kind).toBe('server');
    // Sent while the login is pending: they wait for it.
    const phone = client('phone', 'P', '1');
    for (let i = 0; i < 3; i++) text(phone, { i });
    await settled();
    for (let i = 3; i < 5; i++) text(phone, { i });
    router.end(phone, 'closed');
    expect(phone.state.kind).toBe('gone');
    await settled();
    expect(host.sent).toEqual([
      connect('1'),
      ...Array.from({ length: 5 }, (_, i) => JSON.stringify({ i, client_id: '1' })),
      disconnect('1'),
    ]);
    expect(await dropped('no_receiver')).toBe(1);
    // Ended while its login is pending: what it sent after the login is dropped with it, like
    // data in flight when a connection drops, and its server hears neither connect nor disconnect.
    const brief = client('brief', 'P', '9');
    text(brief, { lost: true });
    router.end(brief, 'closed');
    await settled();
    expect(host.sent).toHaveLength(7);
    const phones = [client('p1', 'P', '1'), client('p2', 'P', '2')];
    await settled();
    wire.length = 0;
    for (const message of ['a', 'b', '{"receiver_id":"2","n":1}', 'c', 'd']) text(host, message);
    await settled();
    expect(phones.map((p) => p.sent)).toEqual([
      ['a', 'b', 'c', 'd'],
      ['a', 'b', '{"receiver_id":"2","n":1}', 'c', 'd'],
    ]);
    router.end(host, 'closed');
    await settled();
    expect(phones.map((p) => p.closedWith)).toEqual([1000, 1000]);
    expect(rooms.counts()).toEqual({ rooms: 0, members: 0 });
  });

  it('gives a code to exactly one of two servers logging in at once', async () => {
    const { rooms, server, settled, closes } = setup(100, true);
    const servers = [server('a', 'SAME'), server('b', 'SAME')];
    await settled();
    expect(servers.map((s) => s.state.kind).sort()).toEqual(['gone', 'server']);
    expect(servers.map((s) => s.closedWith).sort()).toEqual([1008, null]);
    expect(rooms.counts()).toEqual({ rooms: 1, members: 0 });
    expect(await closes('code_taken')).toBe(1);
  });

  it('gives back what a peer got when it ended while its login was pending', async () => {
    const { router, rooms, wire, server, client, settled } = setup(100, true);
    const early = server('early', 'GONE');
    router.end(early, 'closed');
    await settled();
    expect(rooms.counts()).toEqual({ rooms: 0, members: 0 });
    const host = server('host', 'GONE');
    await settled();
    const phone = client('phone', 'GONE', '1');
    router.end(phone, 'closed');
    await settled();
    // Neither connect nor disconnect: the client never was in the room as far as its server knows.
    expect(host.sent).toEqual([]);
    expect(wire).toEqual([]);
    expect(rooms.counts()).toEqual({ rooms: 1, members: 0 });
    expect(phone.late).toBe(0);
  });
});
