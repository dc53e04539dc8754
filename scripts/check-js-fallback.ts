// .ci/run after `CXX=false npm ci`: the install succeeded without building the native relay
// engine; NORAY_UDP_RELAY_ENGINE=auto must pick the js engine and say why, `native` must refuse.
import { systemClock } from '../src/core/clock.js';
import { createRelayEngine } from '../src/core/relay/select.js';

const options = {
  host: '127.0.0.1',
  ports: [0],
  clock: systemClock,
  idleTimeoutMs: 1000,
  cleanupIntervalMs: 1000,
  maxIndividualBytesPerSecond: 1e6,
  maxGlobalBytesPerSecond: 1e6,
  trafficIntervalMs: 100,
  maxLifetimeMs: 1e6,
  maxLifetimeBytes: 1e6,
  socketBufferBytes: 65536,
  relearnAfterMs: 3000,
  maxPerSource: 1,
  maxPerSession: 1,
};

const auto = createRelayEngine('auto', options);
if (auto.kind !== 'js' || auto.fallback === null) throw new Error('without the addon, auto must fall back to the js engine');
let refusal: string | null = null;
try {
  createRelayEngine('native', options);
} catch (error) {
  refusal = error instanceof Error ? error.message : String(error);
}
if (refusal === null) throw new Error('without the addon, NORAY_UDP_RELAY_ENGINE=native must refuse to start');
const bound = await auto.engine.start();
await auto.engine.stop();
if (bound.length > 0) throw new Error(`the js engine could not bind: ${bound[0]?.error}`);
console.log(`no native relay engine: auto relays on js (${auto.fallback}); native refuses: ${refusal}`);
