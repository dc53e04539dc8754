import { pino, type Logger } from 'pino';
import { afterEach } from 'vitest';
import { App } from '../../src/app.js';
import { configWith } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Clock } from '../../src/core/clock.js';

/** Every front and the ops server off, every host on loopback: tests switch on what they use. */
export const ALL_OFF: Partial<Config> = {
  logLevel: 'silent',
  httpHost: '127.0.0.1',
  httpPort: null,
  socketHost: '127.0.0.1',
  socketPort: null,
  udpHost: '127.0.0.1',
  udpRegistrarPort: null,
  udpRelayPorts: null,
  lobbyHost: '127.0.0.1',
  lobbyHttpPort: null,
  lobbyUdpPort: null,
  wsrelayHost: '127.0.0.1',
  wsrelayPort: null,
  tcprelayHost: '127.0.0.1',
  tcprelayPort: null,
};

/** Every front and the ops server on, on ephemeral ports (one relay port). */
export const EVERY_FRONT_ON: Partial<Config> = {
  httpPort: 0,
  socketPort: 0,
  udpRegistrarPort: 0,
  udpRelayPorts: [0],
  lobbyHttpPort: 0,
  lobbyUdpPort: 0,
  wsrelayPort: 0,
  tcprelayPort: 0,
};

const running = new Set<App>();

afterEach(async () => {
  const apps = [...running];
  running.clear();
  await Promise.all(apps.map((app) => app.stop()));
});

/**
 * Starts an app with everything off except `overrides` (use port 0 for ephemeral ports);
 * it is stopped after the test, unless `keep` (then the caller stops it, e.g. in afterAll).
 */
export async function startApp(
  overrides: Partial<Config>,
  options: { clock?: Clock; logger?: Logger; keep?: boolean } = {},
): Promise<App> {
  const app = new App({
    config: configWith({ ...ALL_OFF, ...overrides }),
    logger: options.logger ?? pino({ level: 'silent' }),
    processMetrics: false,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  if (!options.keep) running.add(app);
  await app.start();
  return app;
}

/** The port a front bound for a role, e.g. port(app, 'noray', 'control'). */
export function port(app: App, front: string, role: string): number {
  const value = app.ports()[front]?.[role];
  if (typeof value !== 'number') throw new Error(`no ${front}.${role} port`);
  return value;
}
