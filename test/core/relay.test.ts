import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { UdpRelayEngine, type UdpRelayEngineOptions } from '../../src/core/relay/engine.js';
import type { RelaySlot } from '../../src/core/relay/port-pool.js';
import { ADMIT, DROP, GlobalTraffic, Relay, type RelayLimits } from '../../src/core/relay/relay.js';

const limits: RelayLimits = { bytesPerSlice: 100, sliceMs: 100, maxLifetimeMs: 10_000, maxLifetimeBytes: 1_000 };
const fakeSlot = (port: number) => ({ port, relay: null }) as unknown as RelaySlot;

describe('Relay.admit', () => {
  it('admits up to the slice budget, then vetoes until the next slice', () => {
    const relay = new Relay({ address: '10.0.0.1', port: 1000 }, fakeSlot(5000), 0);
    expect(relay.admit(60, 0, limits)).toBe(ADMIT);
    expect(relay.admit(40, 50, limits)).toBe(ADMIT);
    expect(relay.admit(1, 99, limits)).toBe(DROP.relay_bandwidth);
    expect(relay.admit(100, 100, limits)).toBe(ADMIT);
    expect(relay.totalBytes).toBe(200);
    expect(relay.lastActive).toBe(100);
  });

  it('vetoes after the lifetime duration and the lifetime traffic', () => {
    const relay = new Relay({ address: '10.0.0.1', port: 1000 }, fakeSlot(5000), 0);
    expect(relay.admit(10, 9_999, limits)).toBe(ADMIT);
    expect(relay.admit(10, 10_000, limits)).toBe(DROP.lifetime_duration);
    const busy = new Relay({ address: '10.0.0.1', port: 1000 }, fakeSlot(5000), 0);
    for (let t = 0; t < 10; t++) expect(busy.admit(100, t * 100, limits)).toBe(ADMIT);
    expect(busy.admit(1, 1000, limits)).toBe(DROP.lifetime_traffic);
  });

  it('keeps permissions keyed by port then address, and revokes only the same relay', () => {
    const a = new Relay({ address: '10.0.0.1', port: 1000 }, fakeSlot(5000), 0);
    const b = new Relay({ address: '10.0.0.2', port: 1000 }, fakeSlot(5001), 0);
    const b2 = new Relay({ address: '10.0.0.2', port: 1000 }, fakeSlot(5002), 0);
    a.permit(b);
    expect(a.permissions.get(1000)?.get('10.0.0.2')).toBe(b);
    a.revoke(b2);
    expect(a.peers()).toEqual([b]);
    a.revoke(b);
    expect(a.permissions.size).toBe(0);
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

describe('UdpRelayEngine', () => {
  const engines: UdpRelayEngine[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.stop()));
    for (const socket of sockets.splice(0)) socket.close();
  });

  async function engine(ports: number, overrides: Partial<UdpRelayEngineOptions> = {}) {
    const clock = new ManualClock();
    const relay = new UdpRelayEngine({
      host: '127.0.0.1',
      ports: Array.from({ length: ports }, () => 0),
      clock,
      idleTimeoutMs: 30_000,
      cleanupIntervalMs: 30_000,
      maxIndividualBytesPerSecond: 1 << 30,
      maxGlobalBytesPerSecond: 1 << 30,
      trafficIntervalMs: 100,
      maxLifetimeMs: 3_600_000,
      maxLifetimeBytes: 1 << 30,
      socketBufferBytes: 1 << 20,
      ...overrides,
    });
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
    const first = relay.introduce({ address: '127.0.0.1', port: 40001 }, host);
    const second = relay.introduce({ address: '127.0.0.1', port: 40002 }, host);
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
    const relay = new UdpRelayEngine({
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
});
