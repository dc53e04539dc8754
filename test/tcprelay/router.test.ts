// The relay's routing without sockets: which frames go to whom, in which order, and what state a peer is left in.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { Reservations } from '../../src/core/limits/reservations.js';
import { SourceRateLimiter } from '../../src/core/limits/source-rate-limiter.js';
import { MemoryRoomStore } from '../../src/core/room-store.js';
import { frame, type Frame } from '../../src/fronts/tcprelay/codec.js';
import type { Rejection, RelayedType } from '../../src/fronts/tcprelay/metrics.js';
import { TcpRelayRouter, type RelayPeer } from '../../src/fronts/tcprelay/router.js';
import { PromisedRoomStore } from '../helpers/promised-room-store.js';

interface FakePeer extends RelayPeer {
  readonly name: string;
  /** The login deadline the peer was connected with. */
  readonly deadline: { cancelled: boolean; cancel(): void };
}

/** `promised`: the router works over a store that answers with promises, as a networked one does. */
function setup(ids: string[] = [], promised = false) {
  const store = promised ? new PromisedRoomStore() : new MemoryRoomStore();
  /** Every frame sent to any peer, as its JSON text, in the order it was sent. */
  const wire: Array<{ to: string; text: string }> = [];
  const relayed: RelayedType[] = [];
  const rejected: Rejection[] = [];
  const picked = [...ids];
  let counter = 0;
  const router = new TcpRelayRouter({
    rooms: store,
    metrics: { relayed: (type) => relayed.push(type), rejected: (reason) => rejected.push(reason) },
    newId: () => picked.shift() ?? `id${++counter}`,
  });
  const peer = (name: string): FakePeer => {
    const deadline = {
      cancelled: false,
      cancel() {
        this.cancelled = true;
      },
    };
    return {
      name,
      deadline,
      state: { kind: 'login', deadline },
      send(encoded) {
        // Length-prefixed exactly as on the wire: int32 big-endian, then the UTF-8 JSON.
        const length = encoded.readInt32BE(0);
        expect(encoded.length).toBe(4 + length);
        wire.push({ to: name, text: encoded.subarray(4).toString('utf8') });
      },
    };
  };
  const send = (p: RelayPeer, f: Frame) => router.handle(p, f);
  /** A peer that has taken `id`; the wire is cleared afterwards. */
  const member = (name: string, id = name): FakePeer => {
    const p = peer(name);
    send(p, frame('INIT', id));
    expect(wire).toEqual([{ to: name, text: `{"payloadType":"INIT","destination":"${id}"}` }]);
    wire.length = 0;
    return p;
  };
  const idOf = (p: RelayPeer) => (p.state.kind === 'member' ? p.state.id : p.state.kind);
  /** Resolves once the promised store has answered everything asked so far. */
  const settled = () => (store instanceof PromisedRoomStore ? store.settled() : Promise.resolve());
  return { router, wire, relayed, rejected, peer, member, send, idOf, settled };
}

const NOT_INITIALIZED = '{"payloadType":"ERROR","payload":"Not initialized: send INIT first"}';

describe('tcprelay router: INIT', () => {
  it('takes a free requested id, answers INIT with it and cancels the login deadline', () => {
    const { router, wire, peer, send, idOf } = setup();
    const alice = peer('alice');
    send(alice, frame('INIT', 'alice'));
    expect(wire).toEqual([{ to: 'alice', text: '{"payloadType":"INIT","destination":"alice"}' }]);
    expect(idOf(alice)).toBe('alice');
    expect(alice.deadline.cancelled).toBe(true);
    expect(router.ids).toBe(1);
  });

  it('picks an id when INIT has no source or an empty one, skipping ids already taken', () => {
    const { router, wire, peer, member, send, idOf } = setup(['taken', 'fresh', 'next']);
    member('holder', 'taken');
    const anon = peer('anon');
    send(anon, frame('INIT'));
    const empty = peer('empty');
    send(empty, frame('INIT', ''));
    expect(wire).toEqual([
      { to: 'anon', text: '{"payloadType":"INIT","destination":"fresh"}' },
      { to: 'empty', text: '{"payloadType":"INIT","destination":"next"}' },
    ]);
    expect([idOf(anon), idOf(empty)]).toEqual(['fresh', 'next']);
    expect(router.ids).toBe(3);
  });

  it('answers a taken id with an ERROR to the newcomer only; it stays in login, the holder keeps the id', () => {
    const { router, wire, rejected, peer, member, send, idOf } = setup();
    const holder = member('holder', 'alice');
    const intruder = peer('intruder');
    send(intruder, frame('INIT', 'alice'));
    expect(wire).toEqual([
      { to: 'intruder', text: '{"payloadType":"ERROR","destination":"alice","payload":"ClientId: alice is already initialized"}' },
    ]);
    expect(rejected).toEqual(['id_taken']);
    expect(intruder.state.kind).toBe('login');
    expect(intruder.deadline.cancelled).toBe(false);
    expect(idOf(holder)).toBe('alice');
    expect(router.ids).toBe(1);
    // It may take another id on the same connection.
    wire.length = 0;
    send(intruder, frame('INIT', 'mallory'));
    expect(wire).toEqual([{ to: 'intruder', text: '{"payloadType":"INIT","destination":"mallory"}' }]);
  });

  it('confirms a re-INIT with the id already held, and a re-INIT under a new id frees the old one', () => {
    const { router, wire, rejected, member, send, idOf } = setup();
    const p = member('p', 'old');
    send(p, frame('INIT', 'old'));
    expect(wire).toEqual([{ to: 'p', text: '{"payloadType":"INIT","destination":"old"}' }]);
    expect(rejected).toEqual([]);
    wire.length = 0;
    send(p, frame('INIT', 'new'));
    expect(wire).toEqual([{ to: 'p', text: '{"payloadType":"INIT","destination":"new"}' }]);
    expect(router.ids).toBe(1);
    wire.length = 0;
    const other = member('other', 'old');
    expect([idOf(p), idOf(other)]).toEqual(['new', 'old']);
  });
});

describe('tcprelay router: MESSAGE and ERROR', () => {
  it('delivers MESSAGE to a known id with the source stamped; the sender hears nothing', () => {
    const { wire, relayed, member, send } = setup();
    const a = member('a');
    member('b');
    send(a, frame('MESSAGE', 'b', 'b', 'a"b 🎮'));
    send(a, frame('MESSAGE', undefined, 'b'));
    expect(wire).toEqual([
      { to: 'b', text: '{"payloadType":"MESSAGE","source":"a","destination":"b","payload":"a\\"b 🎮"}' },
      { to: 'b', text: '{"payloadType":"MESSAGE","source":"a","destination":"b"}' },
    ]);
    expect(relayed).toEqual(['MESSAGE', 'MESSAGE']);
  });

  it('delivers ERROR frames the same way', () => {
    const { wire, relayed, member, send } = setup();
    const a = member('a');
    member('b');
    send(a, frame('ERROR', 'x', 'b', 'bad message'));
    expect(wire).toEqual([{ to: 'b', text: '{"payloadType":"ERROR","source":"a","destination":"b","payload":"bad message"}' }]);
    expect(relayed).toEqual(['ERROR']);
  });

  it('answers an unknown or missing destination with an ERROR to the sender', () => {
    const { wire, relayed, rejected, member, send } = setup();
    const a = member('a');
    send(a, frame('MESSAGE', undefined, 'nobody', 'hello?'));
    send(a, frame('ERROR', undefined, undefined, 'where to?'));
    expect(wire).toEqual([
      { to: 'a', text: '{"payloadType":"ERROR","destination":"a","payload":"ClientId: nobody is not initialized"}' },
      { to: 'a', text: '{"payloadType":"ERROR","destination":"a","payload":"Destination is missing"}' },
    ]);
    expect(rejected).toEqual(['unknown_destination', 'no_destination']);
    expect(relayed).toEqual([]);
  });

  it('answers MESSAGE and ERROR before INIT with an ERROR, delivers nothing and keeps the login deadline', () => {
    const { wire, rejected, peer, member, send } = setup();
    member('t');
    const early = peer('early');
    send(early, frame('MESSAGE', 't', 't', 'spoof'));
    send(early, frame('ERROR', undefined, 't'));
    expect(wire).toEqual([
      { to: 'early', text: NOT_INITIALIZED },
      { to: 'early', text: NOT_INITIALIZED },
    ]);
    expect(rejected).toEqual(['not_initialized', 'not_initialized']);
    expect(early.state.kind).toBe('login');
    expect(early.deadline.cancelled).toBe(false);
  });

  it('counts a delivery to a receiver that is dropped while being written to, and frees its id', () => {
    const { router, wire, relayed, member, send } = setup();
    const a = member('a');
    const slow = member('slow');
    // The socket side drops a peer whose send buffer is full instead of writing to it.
    slow.send = () => void router.disconnected(slow);
    send(a, frame('MESSAGE', undefined, 'slow', 'x'));
    expect(relayed).toEqual(['MESSAGE']);
    expect(slow.state.kind).toBe('gone');
    expect(router.ids).toBe(1);
    send(a, frame('MESSAGE', undefined, 'slow', 'again'));
    expect(wire).toEqual([
      { to: 'a', text: '{"payloadType":"ERROR","destination":"a","payload":"ClientId: slow is not initialized"}' },
    ]);
  });
});

describe('tcprelay router: CLOSE and disconnect', () => {
  it('CLOSE frees the id without a reply; the connection may INIT again and is never put back in login', () => {
    const { router, wire, member, send, idOf } = setup();
    const first = member('first', 'shared');
    send(first, frame('CLOSE'));
    expect(wire).toEqual([]);
    expect(first.state.kind).toBe('released');
    expect(router.ids).toBe(0);
    send(first, frame('MESSAGE', undefined, 'shared', 'x'));
    expect(wire).toEqual([{ to: 'first', text: NOT_INITIALIZED }]);
    wire.length = 0;
    const second = member('second', 'shared');
    send(first, frame('INIT', 'first-again'));
    expect(wire).toEqual([{ to: 'first', text: '{"payloadType":"INIT","destination":"first-again"}' }]);
    // The old holder's disconnect does not remove the new holder.
    expect(router.disconnected(first)).toBe(true);
    expect(idOf(second)).toBe('shared');
    expect(router.ids).toBe(1);
  });

  it('CLOSE before INIT is ignored: still in login, deadline pending', () => {
    const { wire, peer, send } = setup();
    const p = peer('p');
    send(p, frame('CLOSE'));
    expect(wire).toEqual([]);
    expect(p.state.kind).toBe('login');
    expect(p.deadline.cancelled).toBe(false);
  });

  it('disconnect frees the id at once, once; frames from a gone peer are ignored', () => {
    const { router, wire, member, send } = setup();
    const a = member('a');
    const b = member('b');
    expect(router.disconnected(b)).toBe(true);
    expect(router.disconnected(b)).toBe(false);
    expect(b.state.kind).toBe('gone');
    expect(router.ids).toBe(1);
    send(b, frame('MESSAGE', undefined, 'a', 'ghost'));
    send(b, frame('INIT', 'b'));
    expect(wire).toEqual([]);
    // The id is free for someone else straight away.
    const again = member('again', 'b');
    send(a, frame('MESSAGE', undefined, 'b', 'hi'));
    expect(wire).toEqual([{ to: 'again', text: '{"payloadType":"MESSAGE","source":"a","destination":"b","payload":"hi"}' }]);
    expect(again.state.kind).toBe('member');
  });

  it('disconnect before INIT cancels the login deadline', () => {
    const { router, peer } = setup();
    const p = peer('p');
    expect(router.disconnected(p)).toBe(true);
    expect(p.deadline.cancelled).toBe(true);
    expect(p.state.kind).toBe('gone');
  });
});

describe('tcprelay router over a store that answers with promises', () => {
  const init = (id: string) => `{"payloadType":"INIT","destination":"${id}"}`;
  const message = (from: string, to: string, payload: string) =>
    `{"payloadType":"MESSAGE","source":"${from}","destination":"${to}","payload":"${payload}"}`;

  it("keeps one sender's frames in order, INIT first, while its store calls are pending", async () => {
    const { router, wire, peer, send, settled } = setup([], true);
    const b = peer('b');
    send(b, frame('INIT', 'b'));
    await settled();
    const a = peer('a');
    send(a, frame('INIT', 'a'));
    for (let i = 0; i < 5; i++) send(a, frame('MESSAGE', undefined, 'b', String(i)));
    send(a, frame('CLOSE'));
    send(a, frame('MESSAGE', undefined, 'b', 'after close'));
    await settled();
    expect(wire).toEqual([
      { to: 'b', text: init('b') },
      { to: 'a', text: init('a') },
      ...Array.from({ length: 5 }, (_, i) => ({ to: 'b', text: message('a', 'b', String(i)) })),
      { to: 'a', text: NOT_INITIALIZED },
    ]);
    expect(router.ids).toBe(1);
  });

  it('gives an id to exactly one of two connections asking at once', async () => {
    const { router, wire, rejected, peer, send, idOf, settled } = setup([], true);
    const peers = [peer('p1'), peer('p2')];
    for (const p of peers) send(p, frame('INIT', 'same'));
    await settled();
    expect(peers.map(idOf).sort()).toEqual(['login', 'same']);
    expect(wire.map((w) => w.text).sort()).toEqual([
      '{"payloadType":"ERROR","destination":"same","payload":"ClientId: same is already initialized"}',
      init('same'),
    ]);
    expect(rejected).toEqual(['id_taken']);
    expect(router.ids).toBe(1);
  });

  it('picks again when a picked id is taken, and gives back an id whose connection ended while it was claimed', async () => {
    const { router, wire, peer, send, idOf, settled } = setup(['taken', 'fresh'], true);
    const holder = peer('holder');
    send(holder, frame('INIT', 'taken'));
    await settled();
    const anon = peer('anon');
    send(anon, frame('INIT'));
    await settled();
    expect(idOf(anon)).toBe('fresh');
    const brief = peer('brief');
    send(brief, frame('INIT', 'brief'));
    expect(router.disconnected(brief)).toBe(true);
    await settled();
    expect(router.ids).toBe(2);
    wire.length = 0;
    // The id is free again.
    const next = peer('next');
    send(next, frame('INIT', 'brief'));
    await settled();
    expect(wire).toEqual([{ to: 'next', text: init('brief') }]);
    expect(idOf(holder)).toBe('taken');
  });
});

describe('tcprelay router abuse limits', () => {
  function guarded() {
    const clock = new ManualClock();
    const wire: Array<{ to: string; text: string }> = [];
    const reports: string[] = [];
    const router = new TcpRelayRouter({
      metrics: { relayed: () => undefined, rejected: () => undefined },
      reservations: new Reservations(30_000, clock),
      guesses: new SourceRateLimiter(1, 2, clock),
      limits: { report: (reason) => reports.push(reason) },
    });
    const peer = (name: string, source: string): RelayPeer => ({
      state: { kind: 'login', deadline: { cancel: () => undefined } },
      source,
      send: (encoded) => wire.push({ to: name, text: encoded.subarray(4).toString('utf8') }),
    });
    return { clock, wire, reports, router, peer };
  }

  it('reserves an id freed by a disconnect for its source; CLOSE frees it for anyone', () => {
    const { wire, reports, router, peer } = guarded();
    const owner = peer('owner', '1.1.1.1');
    router.handle(owner, frame('INIT', 'a'));
    router.disconnected(owner);
    const other = peer('other', '2.2.2.2');
    router.handle(other, frame('INIT', 'a'));
    expect(wire.at(-1)).toEqual({ to: 'other', text: '{"payloadType":"ERROR","destination":"a","payload":"ClientId: a is already initialized"}' });
    expect(reports).toEqual(['id_reserved']);
    const back = peer('back', '1.1.1.1');
    router.handle(back, frame('INIT', 'a'));
    expect(wire.at(-1)).toEqual({ to: 'back', text: '{"payloadType":"INIT","destination":"a"}' });
    // Given back with CLOSE, the id is not reserved.
    router.handle(back, frame('CLOSE'));
    router.handle(other, frame('INIT', 'a'));
    expect(wire.at(-1)).toEqual({ to: 'other', text: '{"payloadType":"INIT","destination":"a"}' });
  });

  it('withholds unknown-destination and id-taken answers past the guess rate of a source', () => {
    const { clock, wire, reports, router, peer } = guarded();
    const guesser = peer('guesser', '3.3.3.3');
    router.handle(guesser, frame('INIT', 'g'));
    wire.length = 0;
    for (let n = 0; n < 4; n++) router.handle(guesser, frame('MESSAGE', undefined, `nobody${n}`, 'x'));
    expect(wire).toHaveLength(2);
    expect(reports).toEqual(['guess_rate', 'guess_rate']);
    clock.advance(1000);
    router.handle(guesser, frame('MESSAGE', undefined, 'nobody', 'x'));
    expect(wire).toHaveLength(3);
  });
});
