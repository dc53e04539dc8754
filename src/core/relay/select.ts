import { UdpRelayEngine, type RelayEngine, type UdpRelayEngineOptions } from './engine.js';
import { loadNativeAddon } from './native-addon.js';
import { NativeRelayEngine } from './native-engine.js';

export const RELAY_ENGINE_CHOICES = ['auto', 'native', 'js'] as const;
export type RelayEngineChoice = (typeof RELAY_ENGINE_CHOICES)[number];

export interface SelectedRelayEngine {
  readonly engine: RelayEngine;
  readonly kind: 'native' | 'js';
  /** Why `auto` runs the js engine; null otherwise. */
  readonly fallback: string | null;
}

/**
 * The engine NORAY_UDP_RELAY_ENGINE asks for: `auto` is native where the addon built and loads,
 * else js; `native` without the addon is an error (the operator asked for it).
 */
export function createRelayEngine(choice: RelayEngineChoice, options: UdpRelayEngineOptions): SelectedRelayEngine {
  if (choice === 'js') return { engine: new UdpRelayEngine(options), kind: 'js', fallback: null };
  const addon = loadNativeAddon();
  if (addon.ok) return { engine: new NativeRelayEngine(addon.NativeRelay, options), kind: 'native', fallback: null };
  if (choice === 'native') throw new Error(`NORAY_UDP_RELAY_ENGINE=native: ${addon.reason}; set it to auto or js to use the JavaScript engine`);
  return { engine: new UdpRelayEngine(options), kind: 'js', fallback: addon.reason };
}
