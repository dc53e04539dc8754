// Arbitrary datagrams and control steps on both relay engines at once: the native engine must do
// exactly what the js engine (the reference) does: the same introductions, the same datagrams
// delivered from the same relay ports, the same counters and drops, and never crash.
import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { RelayEngine, UdpRelayEngineOptions } from '../../src/core/relay/engine.js';
import { runs } from '../helpers/fuzz.js';
import { relayEngine, relayEngineKinds, relayTestOptions, type RelayEngineKind } from '../helpers/relay-engines.js';

/** Client sockets: four on 127.0.0.1 (one IP, as behind a NAT), two on 127.0.0.2. */
const CLIENT_HOSTS = ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2'];
const RELAY_PORTS = 8;

type Step =
  | { readonly kind: 'send'; readonly from: number; readonly to: number; readonly size: number; readonly fill: number }
  | { readonly kind: 'introduce'; readonly a: number; readonly b: number }
  | { readonly kind: 'move'; readonly from: number; readonly to: number }
  | { readonly kind: 'advance'; readonly ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), from: fc.nat(CLIENT_HOSTS.length - 1), to: fc.nat(4 * RELAY_PORTS - 1), size: fc.oneof(fc.nat(1500), fc.constantFrom(0, 9000)), fill: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('introduce' as const), a: fc.nat(CLIENT_HOSTS.length - 1), b: fc.nat(CLIENT_HOSTS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), from: fc.nat(CLIENT_HOSTS.length - 1), to: fc.nat(CLIENT_HOSTS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(1, 50, 150, 2_999, 3_000, 20_000) }) },
);

const limits = fc.record({
  maxIndividualBytesPerSecond: fc.constantFrom(1 << 30, 40_000),
  maxGlobalBytesPerSecond: fc.constantFrom(1 << 30, 60_000),
  maxLifetimeMs: fc.constantFrom(3_600_000, 5_000),
  maxLifetimeBytes: fc.constantFrom(1 << 30, 3_000),
  relearnAfterMs: fc.constantFrom(3_000, 0),
});

/** One engine with its own clients: what it delivered, named by client index and relay port rank. */
class Rig {
  readonly clock = new ManualClock();
  readonly clients: Socket[] = [];
  readonly received: string[][] = CLIENT_HOSTS.map(() => []);
  engine!: RelayEngine;
  private ports: number[] = [];
  /** Relay ports introductions handed out, in order: most datagrams go to one of them. */
  private handedOut: number[] = [];

  async open(): Promise<void> {
    for (const [index, host] of CLIENT_HOSTS.entries()) {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, host, resolve));
      socket.on('message', (message, from) => this.received[index]!.push(`${this.rank(from.port)}:${message.length}:${message[0] ?? ''}`));
      this.clients.push(socket);
    }
  }

  async start(kind: RelayEngineKind, overrides: Partial<UdpRelayEngineOptions>): Promise<void> {
    for (const list of this.received) list.length = 0;
    this.handedOut = [];
    this.engine = relayEngine(kind, relayTestOptions(this.clock, RELAY_PORTS, { idleTimeoutMs: 5_000, cleanupIntervalMs: 1_000, ...overrides }));
    expect(await this.engine.start()).toEqual([]);
    this.ports = [...this.engine.boundPorts].sort((a, b) => a - b);
  }

  rank(port: number): number {
    return this.ports.indexOf(port);
  }

  endpoint(index: number): { address: string; port: number } {
    return { address: CLIENT_HOSTS[index]!, port: this.clients[index]!.address().port };
  }

  /** Every datagram is counted once: relayed or dropped for one reason. */
  accounted(): number {
    const { packets, drops } = this.engine.stats;
    return packets + Object.values(drops).reduce((sum, count) => sum + count, 0);
  }

  async apply(next: Step): Promise<string> {
    switch (next.kind) {
      case 'send': {
        const before = this.accounted();
        const target = next.to >= RELAY_PORTS && this.handedOut.length > 0 ? this.handedOut[next.to % this.handedOut.length]! : this.ports[next.to % RELAY_PORTS]!;
        this.clients[next.from]!.send(Buffer.alloc(next.size, next.fill), target, '127.0.0.1');
        await expect.poll(() => this.accounted(), { interval: 1, timeout: 3000 }).toBe(before + 1);
        return 'sent';
      }
      case 'introduce': {
        const result = this.engine.introduce(this.endpoint(next.a), this.endpoint(next.b), { source: CLIENT_HOSTS[next.a]!, session: `s${next.a}` });
        if (result.ok) this.handedOut.push(result.portA, result.portB);
        return result.ok ? `ok ${this.rank(result.portA)} ${this.rank(result.portB)}` : result.reason;
      }
      case 'move':
        return String(this.engine.move(this.endpoint(next.from), this.endpoint(next.to)));
      case 'advance':
        this.clock.advance(next.ms);
        return 'advanced';
    }
  }

  async settle(): Promise<void> {
    const delivered = () => this.received.reduce((sum, list) => sum + list.length, 0);
    await expect.poll(delivered, { interval: 1, timeout: 3000 }).toBe(this.engine.stats.packets);
  }

  close(): void {
    for (const socket of this.clients) socket.close();
  }
}

const kinds = relayEngineKinds();
const run = kinds.includes('native') ? describe : describe.skip;

run('relay engines under arbitrary datagrams and control steps', () => {
  const js = new Rig();
  const native = new Rig();
  beforeAll(async () => {
    await Promise.all([js.open(), native.open()]);
  });
  afterAll(() => {
    js.close();
    native.close();
  });

  it('the native engine answers, delivers and counts exactly as the js engine', async () => {
    await fc.assert(
      fc.asyncProperty(limits, fc.array(step, { minLength: 1, maxLength: 60 }), async (overrides, steps) => {
        await Promise.all([js.start('js', overrides), native.start('native', overrides)]);
        try {
          for (const next of steps) {
            const [expected, actual] = await Promise.all([js.apply(next), native.apply(next)]);
            expect(actual).toBe(expected);
          }
          await Promise.all([js.settle(), native.settle()]);
          expect(native.engine.stats).toEqual(js.engine.stats);
          expect(native.received).toEqual(js.received);
        } finally {
          await Promise.all([js.engine.stop(), native.engine.stop()]);
        }
      }),
      { numRuns: runs(40) },
    );
  }, 300_000);
});
