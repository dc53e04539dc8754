import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { RelayEngine, UdpRelayEngineOptions } from '../../src/core/relay/engine.js';
import { ADMIT, DROP, EndpointMap, GlobalTraffic, Player, type RelayLimits } from '../../src/core/relay/relay.js';
import { describeEachEngine, relayEngine, relayTestOptions } from '../helpers/relay-engines.js';

const limits: RelayLimits = { bytesPerSlice: 100, sliceMs: 100, maxLifetimeMs: 10_000, maxLifetimeBytes: 1_000 };

describe('Player.admit', () => {
  it('admits up to the slice budget, then vetoes until the next slice', () => {
    const player = new Player({ address: '10.0.0.1', port: 1000 }, 0);
    expect(player.admit(60, 0, limits)).toBe(ADMIT);
    expect(player.admit(40, 50, limits)).toBe(ADMIT);
    expect(player.admit(1, 99, limits)).toBe(DROP.relay_bandwidth);
    expect(player.admit(100, 100, limits)).toBe(ADMIT);
    expect(player.totalBytes).toBe(200);
  });

  it('vetoes after the lifetime duration and the lifetime traffic', () => {
    const player = new Player({ address: '10.0.0.1', port: 1000 }, 0);
    expect(player.admit(10, 9_999, limits)).toBe(ADMIT);
    expect(player.admit(10, 10_000, limits)).toBe(DROP.lifetime_duration);
    const busy = new Player({ address: '10.0.0.1', port: 1000 }, 0);
    for (let t = 0; t < 10; t++) expect(busy.admit(100, t * 100, limits)).toBe(ADMIT);
    expect(busy.admit(1, 1000, limits)).toBe(DROP.lifetime_traffic);
  });
});

describe('EndpointMap', () => {
  it('keys by port then address, and deletes only the value it holds', () => {
    const map = new EndpointMap<string>();
    map.set({ address: '10.0.0.2', port: 1000 }, 'b');
    map.set({ address: '10.0.0.3', port: 1000 }, 'c');
    expect(map.get(1000, '10.0.0.2')).toBe('b');
    expect(map.get(1001, '10.0.0.2')).toBeUndefined();
    map.delete({ address: '10.0.0.2', port: 1000 }, 'other');
    expect(map.get(1000, '10.0.0.2')).toBe('b');
    map.delete({ address: '10.0.0.2', port: 1000 }, 'b');
    expect(map.get(1000, '10.0.0.2')).toBeUndefined();
    expect(map.size).toBe(1);
    expect([...map.values()]).toEqual(['c']);
  });
});

describe('GlobalTraffic', () => {
  it('shares one slice budget', () => {
    const global = new GlobalTraffic(100, 100);
    expect(global.admit(100, 0)).toBe(true);
    expect(global.admit(1, 1)).toBe(false);
    expect(global.admit(1, 100)).toBe(true);
  });
});

describeEachEngine('UdpRelayEngine', (kind) => {
  const engines: RelayEngine[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.stop()));
    for (const socket of sockets.splice(0)) socket.close();
  });

  async function engine(ports: number, overrides: Partial<UdpRelayEngineOptions> = {}) {
    const clock = new ManualClock();
    const relay = relayEngine(kind, relayTestOptions(clock, ports, overrides));
    engines.push(relay);
    expect(await relay.start()).toEqual([]);
    return { relay, clock };
  }

  async function udp(): Promise<Socket> {
    const socket = createSocket('udp4');
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return socket;
  }

  it('reuses an endpoint\'s relay across introductions', async () => {
    const { relay } = await engine(4);
    const host = { address: '127.0.0.1', port: 40000 };
    const first = relay.introduce({ address: '127.0.0.2', port: 40001 }, host);
    const second = relay.introduce({ address: '127.0.0.3', port: 40002 }, host);
    expect(first.ok && second.ok).toBe(true);
    if (!first.ok || !second.ok) return;
    expect(first.portB).toBe(second.portB);
    expect(first.portA).not.toBe(second.portA);
    expect(relay.stats.relays).toBe(3);
    expect(relay.relayPortOf(host)).toBe(first.portB);
  });

  it('refuses when the pool is empty without leaking a half-made relay', async () => {
    const { relay } = await engine(2);
    expect(relay.introduce({ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 }).ok).toBe(true);
    const result = relay.introduce({ address: '127.0.0.1', port: 3 }, { address: '127.0.0.1', port: 4 });
    expect(result).toEqual({ ok: false, reason: 'no_free_port' });
    expect(relay.stats.relays).toBe(2);
    expect(relay.introduce({ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 1 })).toEqual({
      ok: false,
      reason: 'same_endpoint',
    });
  });

  it('returns ports to the pool on expiry and revokes permissions', async () => {
    const { relay, clock } = await engine(2);
    relay.introduce({ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 });
    expect(relay.stats.freePorts).toBe(0);
    clock.advance(30_000);
    expect(relay.stats.relays).toBe(0);
    expect(relay.stats.freePorts).toBe(2);
    expect(relay.introduce({ address: '127.0.0.1', port: 3 }, { address: '127.0.0.1', port: 4 }).ok).toBe(true);
  });

  it('reports ports that cannot be bound and serves with the rest', async () => {
    const taken = await udp();
    const takenPort = taken.address().port;
    const clock = new ManualClock();
    const relay = relayEngine(kind, {
      host: '127.0.0.1',
      ports: [takenPort, 0],
      clock,
      idleTimeoutMs: 1000,
      cleanupIntervalMs: 1000,
      maxIndividualBytesPerSecond: 1e9,
      maxGlobalBytesPerSecond: 1e9,
      trafficIntervalMs: 100,
      maxLifetimeMs: 1e9,
      maxLifetimeBytes: 1e12,
      socketBufferBytes: 65536,
      relearnAfterMs: 3_000,
      maxPerSource: 1000,
      maxPerSession: 1000,
    });
    engines.push(relay);
    const failures = await relay.start();
    expect(failures.map((failure) => failure.port)).toEqual([takenPort]);
    expect(relay.stats.boundPorts).toBe(1);
  });

  it('forwards from the sender\'s relay port to the target, in both directions', async () => {
    const { relay } = await engine(2);
    const a = await udp();
    const b = await udp();
    const result = relay.introduce(
      { address: '127.0.0.1', port: a.address().port },
      { address: '127.0.0.1', port: b.address().port },
    );
    if (!result.ok) throw new Error('introduce failed');
    const atB = new Promise<[string, number]>((resolve) => b.once('message', (m, from) => resolve([m.toString(), from.port])));
    a.send('ping', result.portB, '127.0.0.1');
    expect(await atB).toEqual(['ping', result.portA]);
    const atA = new Promise<[string, number]>((resolve) => a.once('message', (m, from) => resolve([m.toString(), from.port])));
    b.send('pong', result.portA, '127.0.0.1');
    expect(await atA).toEqual(['pong', result.portB]);
    expect(relay.stats.packets).toBe(2);
    expect(relay.stats.bytes).toBe(8);
  });

  it('gives two peers behind one IP relay ports of their own on the host side, so neither is ambiguous', async () => {
    const { relay } = await engine(6);
    const host = { address: '127.0.0.1', port: 40000 };
    const first = relay.introduce({ address: '127.0.0.9', port: 40001 }, host);
    const second = relay.introduce({ address: '127.0.0.9', port: 40002 }, host);
    const other = relay.introduce({ address: '127.0.0.8', port: 40003 }, host);
    if (!first.ok || !second.ok || !other.ok) throw new Error('introduce failed');
    expect(second.portB).not.toBe(first.portB);
    expect(other.portB).toBe(first.portB);
    expect(relay.relayPortOf(host)).toBe(first.portB);
    expect(relay.introduce({ address: '127.0.0.9', port: 40001 }, host)).toEqual(first);
  });

  it('charges relay ports to the requester\'s source and session, refuses past either cap, and frees the charge with the port', async () => {
    const { relay, clock } = await engine(10, { maxPerSource: 4, maxPerSession: 3 });
    const host = { address: '127.0.0.1', port: 40000 };
    const attacker = { source: '203.0.113.9', session: 's1' };
    expect(relay.introduce({ address: '127.0.0.2', port: 1 }, host, attacker).ok).toBe(true);
    expect(relay.chargedTo('203.0.113.9')).toBe(2);
    // The next pair needs one more port (the host's is shared): within both caps.
    expect(relay.introduce({ address: '127.0.0.3', port: 1 }, host, attacker).ok).toBe(true);
    expect(relay.introduce({ address: '127.0.0.4', port: 1 }, host, attacker)).toEqual({ ok: false, reason: 'session_limit' });
    expect(relay.introduce({ address: '127.0.0.4', port: 1 }, host, { source: '203.0.113.9', session: 's2' }).ok).toBe(true);
    expect(relay.introduce({ address: '127.0.0.5', port: 1 }, host, { source: '203.0.113.9', session: 's3' })).toEqual({
      ok: false,
      reason: 'source_limit',
    });
    // Another source is not affected, and an existing pair costs nothing.
    expect(relay.introduce({ address: '127.0.0.6', port: 1 }, host, { source: '198.51.100.1', session: 's9' }).ok).toBe(true);
    expect(relay.introduce({ address: '127.0.0.2', port: 1 }, host, attacker).ok).toBe(true);
    expect(relay.stats.relays).toBe(5);
    clock.advance(30_000);
    expect(relay.chargedTo('203.0.113.9')).toBe(0);
    expect(relay.introduce({ address: '127.0.0.5', port: 1 }, host, { source: '203.0.113.9', session: 's3' }).ok).toBe(true);
  });

  describe('learning NAT mappings (symmetric NATs)', () => {
    /** A receiving socket that records what arrives, with the sender's port. */
    function inbox(socket: Socket): Array<[string, number]> {
      const got: Array<[string, number]> = [];
      socket.on('message', (message, from) => got.push([message.toString(), from.port]));
      return got;
    }
    const until = async (condition: () => boolean) => {
      const deadline = Date.now() + 3000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error('condition not reached');
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };

    /**
     * a registered from socket aReg, but it talks to the relay from aNat (another port of the same IP,
     * as through a symmetric NAT); b talks from its registered socket.
     */
    async function symmetricPair(relearnAfterMs = 3_000) {
      const setup = await engine(4, { relearnAfterMs });
      const aReg = await udp();
      const aNat = await udp();
      const b = await udp();
      const result = setup.relay.introduce(
        { address: '127.0.0.1', port: aReg.address().port },
        { address: '127.0.0.1', port: b.address().port },
      );
      if (!result.ok) throw new Error('introduce failed');
      return { ...setup, aReg, aNat, b, ...result, atReg: inbox(aReg), atNat: inbox(aNat), atB: inbox(b) };
    }

    it('answers a player where it is heard on the relay port, not where the registrar saw it', async () => {
      const { relay, aNat, b, portA, portB, atReg, atNat, atB } = await symmetricPair();
      b.send('before', portA, '127.0.0.1');
      await until(() => atReg.length === 1);
      aNat.send('hello', portB, '127.0.0.1');
      await until(() => atB.length === 1);
      expect(atB[0]).toEqual(['hello', portA]);
      b.send('back', portA, '127.0.0.1');
      await until(() => atNat.length === 1);
      expect(atNat[0]).toEqual(['back', portB]);
      expect(atReg).toEqual([['before', portB]]);
      expect(relay.stats.learned).toBe(1);
      expect(relay.stats.relearned).toBe(0);
    });

    it('locks a learned mapping while it is active and follows a rebinding after silence', async () => {
      const { relay, clock, aNat, b, portA, portB, atNat, atB } = await symmetricPair(3_000);
      const rebound = await udp();
      const atRebound = inbox(rebound);
      aNat.send('one', portB, '127.0.0.1');
      await until(() => atB.length === 1);
      clock.advance(2_999);
      rebound.send('takeover?', portB, '127.0.0.1');
      await until(() => relay.stats.drops.mapping_locked === 1);
      b.send('still yours', portA, '127.0.0.1');
      await until(() => atNat.length === 1);
      clock.advance(3_000);
      rebound.send('after rebinding', portB, '127.0.0.1');
      await until(() => atB.length === 2);
      b.send('found you', portA, '127.0.0.1');
      await until(() => atRebound.length === 1);
      expect(atRebound[0]).toEqual(['found you', portB]);
      expect(atNat).toEqual([['still yours', portB]]);
      expect(relay.stats.relearned).toBe(1);
    });

    it('lets the registered endpoint win over a source that spoke first', async () => {
      const { relay, aReg, aNat, b, portA, portB, atReg, atB } = await symmetricPair();
      aNat.send('stranger first', portB, '127.0.0.1');
      await until(() => atB.length === 1);
      aReg.send('the player', portB, '127.0.0.1');
      await until(() => atB.length === 2);
      aNat.send('stranger again', portB, '127.0.0.1');
      await until(() => relay.stats.drops.mapping_locked === 1);
      b.send('to the player', portA, '127.0.0.1');
      await until(() => atReg.length === 1);
      expect(atB.map(([text]) => text)).toEqual(['stranger first', 'the player']);
      expect(atReg).toEqual([['to the player', portB]]);
    });

    it('never learns another IP, another player\'s registered endpoint, or a relay port that is not a peer\'s', async () => {
      const { relay, b, portA, portB, atB } = await symmetricPair();
      const otherIp = createSocket('udp4');
      sockets.push(otherIp);
      await new Promise<void>((resolve) => otherIp.bind(0, '127.0.0.2', resolve));
      otherIp.send('other ip', portB, '127.0.0.1');
      // c is registered and relayed elsewhere: its endpoint is never taken as a's mapping.
      const c = await udp();
      const elsewhere = relay.introduce({ address: '127.0.0.1', port: c.address().port }, { address: '127.0.0.5', port: 9 });
      expect(elsewhere.ok).toBe(true);
      c.send('someone else', portB, '127.0.0.1');
      // b sending to its own relay port is not a lane either.
      b.send('to myself', portB, '127.0.0.1');
      await until(() => relay.stats.drops.no_permission === 3);
      expect(atB).toEqual([]);
      expect(relay.stats.learned).toBe(0);
      expect(portA).not.toBe(portB);
    });

    it('follows a re-registration: relays keep their ports and answer the new endpoint', async () => {
      const { relay, aReg, b, portA, portB, atB } = await symmetricPair();
      const moved = await udp();
      const atMoved = inbox(moved);
      expect(relay.move({ address: '127.0.0.1', port: aReg.address().port }, { address: '127.0.0.1', port: moved.address().port })).toBe(true);
      expect(relay.relayPortOf({ address: '127.0.0.1', port: moved.address().port })).toBe(portA);
      expect(relay.relayPortOf({ address: '127.0.0.1', port: aReg.address().port })).toBeUndefined();
      b.send('after move', portA, '127.0.0.1');
      await until(() => atMoved.length === 1);
      moved.send('from new', portB, '127.0.0.1');
      await until(() => atB.length === 1);
      expect(atMoved[0]).toEqual(['after move', portB]);
      expect(atB[0]).toEqual(['from new', portA]);
      expect(relay.stats.learned).toBe(0);
    });

    it('releases learned sources with their relays', async () => {
      const { relay, clock, aNat, portB, atB } = await symmetricPair();
      aNat.send('x', portB, '127.0.0.1');
      await until(() => atB.length === 1);
      clock.advance(30_000);
      expect(relay.stats.relays).toBe(0);
      expect(relay.stats.freePorts).toBe(4);
    });
  });
});
