// Both relay engines for the relay tests: the js engine always, the native one where its addon is
// built (npm ci builds it where g++, make and python3 are installed). Not built: its tests skip with
// a message, except on CI, where they fail (.ci/run builds it).
import { describe } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import type { RelayEngine, UdpRelayEngineOptions } from '../../src/core/relay/engine.js';
import { loadNativeAddon } from '../../src/core/relay/native-addon.js';
import { createRelayEngine } from '../../src/core/relay/select.js';

export type RelayEngineKind = 'js' | 'native';

const onCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Why the native engine cannot run here, or null when its addon loads. */
export function nativeMissing(): string | null {
  const addon = loadNativeAddon();
  return addon.ok ? null : addon.reason;
}

/** The engines to run a relay test against: js, and native unless it is missing (on CI missing fails). */
export function relayEngineKinds(): RelayEngineKind[] {
  const missing = nativeMissing();
  if (missing === null) return ['js', 'native'];
  if (onCi) throw new Error(`CI must test the native relay engine: ${missing}`);
  console.warn(`native relay engine tests skipped: ${missing}`);
  return ['js'];
}

/** `describe` once per engine, named after it. */
export function describeEachEngine(name: string, body: (kind: RelayEngineKind) => void): void {
  for (const kind of relayEngineKinds()) describe(`${name} [${kind} engine]`, () => body(kind));
}

export function relayEngine(kind: RelayEngineKind, options: UdpRelayEngineOptions): RelayEngine {
  return createRelayEngine(kind, options).engine;
}

/** Engine options for tests on loopback: `ports` ephemeral ports, limits out of the way unless overridden. */
export function relayTestOptions(clock: Clock, ports: number, overrides: Partial<UdpRelayEngineOptions> = {}): UdpRelayEngineOptions {
  return {
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
    relearnAfterMs: 3_000,
    maxPerSource: 1000,
    maxPerSession: 1000,
    ...overrides,
  };
}
