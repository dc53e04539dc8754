/**
 * The server under test: the real App from dist/ (built by `npm run build`), configured from
 * NORAY_* environment variables like the CLI, plus an IPC channel the runner uses to read the
 * relay counters and to measure memory.
 */
import { pathToFileURL } from 'node:url';
import { ROOT_DIR } from './lib/child.js';
import { serve } from './lib/rpc.js';

type AppModule = typeof import('../src/app.js');
type LoadModule = typeof import('../src/config/load.js');
type NorayFrontModule = typeof import('../src/fronts/noray/index.js');

const dist = (path: string) => pathToFileURL(`${ROOT_DIR}dist/${path}`).href;
const { App } = (await import(dist('app.js'))) as AppModule;
const { resolveConfig } = (await import(dist('config/load.js'))) as LoadModule;
type NorayFront = InstanceType<NorayFrontModule['NorayFront']>;

const { config } = resolveConfig({ flags: {}, env: process.env, envFile: {} });
const app = new App({ config, processMetrics: false });
await app.start();

const gc = (globalThis as { gc?: () => void }).gc;

function memory(): { heapUsed: number; rss: number; external: number; arrayBuffers: number } {
  if (gc) {
    gc();
    gc();
  }
  const usage = process.memoryUsage();
  return { heapUsed: usage.heapUsed, rss: usage.rss, external: usage.external, arrayBuffers: usage.arrayBuffers };
}

serve({
  ports: () => app.ports(),
  relayStats: () => app.front<NorayFront>('noray')?.relay?.stats ?? null,
  memory,
  fronts: () => app.fronts.map((front) => front.name),
});

const stop = () => {
  app.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
