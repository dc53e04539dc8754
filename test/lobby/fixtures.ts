import { afterEach } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { port, startApp } from '../helpers/app.js';
import { OrionClient } from '../clients/orion.js';

/** A lobby front on ephemeral ports with a 50 ms reminder interval and long timeouts; stopped after the test. */
export async function startLobby(overrides: Partial<Config> = {}): Promise<{ app: App; httpPort: number; udpPort: number }> {
  const app = await startApp({
    lobbyHttpPort: 0,
    lobbyUdpPort: 0,
    lobbyConnectRequestInterval: 50,
    lobbyServerConnectTimeout: 60_000,
    lobbyConnectTimeout: 60_000,
    ...overrides,
  });
  return { app, httpPort: port(app, 'lobby', 'http'), udpPort: port(app, 'lobby', 'udp') };
}

/** Connects Orion clients that are closed after each test of the calling file. */
export function clientPool(): (httpPort: number, udpPort?: number | null, path?: string) => Promise<OrionClient> {
  const clients: OrionClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  return async (httpPort, udpPort = null, path = '/') => {
    const client = await OrionClient.connect(httpPort, udpPort, path);
    clients.push(client);
    return client;
  };
}
