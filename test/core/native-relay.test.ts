// The native relay engine's own guarantees: every resource given back on stop, the wall clock it
// reads natively agreeing with Date.now(), and a binding that refuses nonsense instead of crashing.
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, ManualClock, type Clock } from '../../src/core/clock.js';
import type { UdpRelayEngineOptions } from '../../src/core/relay/engine.js';
import { loadNativeAddon, type NativeRelayBinding } from '../../src/core/relay/native-addon.js';
import { NativeRelayEngine } from '../../src/core/relay/native-engine.js';
import { runs } from '../helpers/fuzz.js';
import { relayEngineKinds, relayTestOptions } from '../helpers/relay-engines.js';

const addon = loadNativeAddon();
const run = relayEngineKinds().includes('native') ? describe : describe.skip;

function options(clock: Clock, ports = 4): UdpRelayEngineOptions {
  return relayTestOptions(clock, ports, { socketBufferBytes: 1 << 16 });
}

function nativeEngine(clock: Clock, ports = 4): NativeRelayEngine {
  if (!addon.ok) throw new Error(addon.reason);
  return new NativeRelayEngine(addon.NativeRelay, options(clock, ports));
}

const openFds = () => readdirSync('/proc/self/fd').length;

run('native relay engine', () => {
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  async function udp(): Promise<Socket> {
    const socket = createSocket('udp4');
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return socket;
  }

  async function relayOnce(engine: NativeRelayEngine, a: Socket, b: Socket): Promise<void> {
    const result = engine.introduce({ address: '127.0.0.1', port: a.address().port }, { address: '127.0.0.1', port: b.address().port });
    if (!result.ok) throw new Error(`introduce: ${result.reason}`);
    const got = new Promise<string>((resolve) => b.once('message', (message) => resolve(message.toString())));
    a.send('x'.repeat(100), result.portB, '127.0.0.1');
    expect(await got).toBe('x'.repeat(100));
  }

  it('gives back every descriptor and its memory: started and stopped 1000 times', async () => {
    const a = await udp();
    const b = await udp();
    const cycle = async (traffic: boolean) => {
      const engine = nativeEngine(new ManualClock(), 4);
      expect(await engine.start()).toEqual([]);
      if (traffic) await relayOnce(engine, a, b);
      await engine.stop();
    };
    // Warm up: the loop's and the allocator's own first-use growth is not the engine's.
    for (let i = 0; i < 50; i++) await cycle(true);
    const fds = openFds();
    const rss = process.memoryUsage().rss;
    // Every cycle with traffic allocates the receive buffers (4 MiB) and every table.
    for (let i = 0; i < 1000; i++) await cycle(i % 4 === 0);
    expect(openFds()).toBe(fds);
    // A leak of one cycle's buffers would be 250 x 4 MiB; allocator noise is a few MiB.
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
  }, 120_000);

  it('reads the wall clock natively on the system clock: relays stay active and expire on time', async () => {
    if (!addon.ok) throw new Error(addon.reason);
    // Short enough to see the expiry: a native clock running ahead (or stuck) fails one of the two sweeps.
    const engine = new NativeRelayEngine(addon.NativeRelay, relayTestOptions(systemClock, 2, { idleTimeoutMs: 300 }));
    try {
      await engine.start();
      await relayOnce(engine, await udp(), await udp());
      expect(engine.sweep()).toBe(0);
      expect(engine.stats.packets).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 450));
      expect(engine.sweep()).toBe(2);
      expect(engine.stats.relays).toBe(0);
    } finally {
      await engine.stop();
    }
  });

  it('takes an address that is no IP literal (an IPv6 zone) as unreachable instead of throwing', async () => {
    if (!addon.ok) throw new Error(addon.reason);
    const engine = new NativeRelayEngine(addon.NativeRelay, { ...options(new ManualClock(), 2), host: '::1' });
    try {
      await engine.start();
      const result = engine.introduce({ address: 'fe80::1%lo', port: 1000 }, { address: '::1', port: 1001 });
      expect(result.ok).toBe(true);
      expect(engine.move({ address: 'fe80::1%lo', port: 1000 }, { address: 'fe80::2%lo', port: 1000 })).toBe(true);
    } finally {
      await engine.stop();
    }
  });

  it('stops cleanly while relaying, and twice', async () => {
    const engine = nativeEngine(new ManualClock(), 2);
    await engine.start();
    const a = await udp();
    const b = await udp();
    await relayOnce(engine, a, b);
    for (let i = 0; i < 200; i++) a.send('burst', engine.boundPorts[0] ?? 0, '127.0.0.1');
    await Promise.all([engine.stop(), engine.stop()]);
    expect(engine.stats.relays).toBe(0);
    // The totals outlive the addon's tables, as on the js engine.
    expect(engine.stats.packets).toBeGreaterThanOrEqual(1);
  });

  it('binding: arguments out of range or of the wrong type throw, never crash', () => {
    if (!addon.ok) throw new Error(addon.reason);
    const NativeRelay = addon.NativeRelay;
    const methods = [
      'closeSlot', 'setRelay', 'setPlayer', 'deletePlayer', 'setLane', 'deleteLane', 'setReach',
      'setHeardAt', 'heardAt', 'setSource', 'deleteSource', 'forwardVia', 'counters', 'relayCounters',
    ] as const;
    const value = fc.oneof(
      fc.integer({ min: -5, max: 70_000 }),
      fc.constantFrom(0, 1, 2, NaN, Infinity, -Infinity, 2 ** 32, 2 ** 24, 1.5, -0),
      fc.constantFrom('127.0.0.1', '::ffff:127.0.0.1', '::1', 'not an address', '', '1.2.3.4.5'),
      fc.boolean(),
      fc.constant(Buffer.alloc(10)),
      fc.constantFrom(undefined, null, {}, [] as unknown[]),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...methods), fc.array(value, { maxLength: 6 })), { maxLength: 40 }), (calls) => {
        const native: NativeRelayBinding = new NativeRelay({
          family: 4,
          socketBufferBytes: 65536,
          bytesPerSlice: 1e6,
          sliceMs: 100,
          maxLifetimeMs: 1e9,
          maxLifetimeBytes: 1e12,
          globalBytesPerSlice: 1e9,
          onUnknown: () => undefined,
        });
        const bound = native.bind('127.0.0.1', 0);
        expect('slot' in bound).toBe(true);
        for (const [method, args] of calls) {
          try {
            (native[method] as (...values: unknown[]) => unknown).apply(native, args);
          } catch (error) {
            expect(error).toBeInstanceOf(TypeError);
          }
        }
        native.close(() => undefined);
      }),
      { numRuns: runs(200) },
    );
  });

  it('reports a port it cannot bind with the errno code, like dgram', async () => {
    const taken = await udp();
    if (!addon.ok) throw new Error(addon.reason);
    const relay = new NativeRelayEngine(addon.NativeRelay, { ...options(new ManualClock()), ports: [taken.address().port, 0] });
    const failures = await relay.start();
    expect(failures).toEqual([{ port: taken.address().port, code: 'EADDRINUSE', error: `bind EADDRINUSE 127.0.0.1:${taken.address().port}` }]);
    expect(relay.stats.boundPorts).toBe(1);
    await relay.stop();
  });
});
