import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Numbers per slot in relayCounters(): lastActive, then bytes. */
export const RELAY_COUNTERS_STRIDE = 2;

/** The native relay's binding (native/relay-engine/src/engine.cc); ids and slots are dense integers. */
export interface NativeRelayBinding {
  bind(address: string, port: number): { slot: number; port: number } | { code: string; error: string };
  closeSlot(slot: number): void;
  setRelay(slot: number, allocated: boolean, now: number): void;
  setPlayer(id: number, createdAt: number): void;
  deletePlayer(id: number): void;
  setLane(id: number, inboundSlot: number, senderId: number, reverseId: number, address: string, port: number): void;
  deleteLane(id: number): void;
  setReach(id: number, address: string, port: number, hasLearned: boolean): void;
  setHeardAt(id: number, at: number): void;
  heardAt(id: number): number;
  setSource(slot: number, address: string, port: number, laneId: number, learned: boolean): void;
  deleteSource(slot: number, address: string, port: number): void;
  forwardVia(laneId: number, data: Buffer, now: number): void;
  /** [packets, bytes, ...drops in DROP_REASONS order] */
  counters(): Float64Array;
  /** [lastActive, bytes] per slot (RELAY_COUNTERS_STRIDE numbers each); NaN for a slot given back. */
  relayCounters(): Float64Array;
  close(done: () => void): void;
}

export interface NativeRelayOptions {
  readonly family: 4 | 6;
  readonly socketBufferBytes: number;
  readonly bytesPerSlice: number;
  readonly sliceMs: number;
  readonly maxLifetimeMs: number;
  readonly maxLifetimeBytes: number;
  readonly globalBytesPerSlice: number;
  /** A datagram from a source the native table does not know: the learning decision is JavaScript's. */
  readonly onUnknown: (slot: number, address: string, port: number, data: Buffer) => void;
  /** Asked once per wake-up instead of the wall clock (a test's ManualClock). */
  readonly now?: () => number;
}

export type NativeRelayConstructor = new (options: NativeRelayOptions) => NativeRelayBinding;

export type NativeAddon = { readonly ok: true; readonly NativeRelay: NativeRelayConstructor } | { readonly ok: false; readonly reason: string };

/** Where `npm ci` (scripts/build-native.mjs) builds the addon; the same from src/ and dist/. */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../../native/relay-engine/build/Release/relay_engine.node', import.meta.url));

let loaded: NativeAddon | undefined;

/**
 * The addon, loaded once. NORAY_NATIVE_ADDON names another build of it (the AddressSanitizer one
 * that `npm run test:native-asan` makes); the server itself never needs it.
 */
export function loadNativeAddon(): NativeAddon {
  if (loaded) return loaded;
  const path = process.env.NORAY_NATIVE_ADDON || NATIVE_ADDON_PATH;
  try {
    const addon = createRequire(import.meta.url)(path) as { NativeRelay?: unknown };
    loaded =
      typeof addon.NativeRelay === 'function'
        ? { ok: true, NativeRelay: addon.NativeRelay as NativeRelayConstructor }
        : { ok: false, reason: `${path} does not export NativeRelay` };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    loaded = { ok: false, reason: `the native relay engine is not built (${message}); npm ci builds it where g++, make and python3 are installed` };
  }
  return loaded;
}
