import type { Config } from '../../config/schema.js';
import { connectionLimits } from '../shared/connection-limits.js';
import type { Front, FrontDeps } from '../front.js';
import type { TlsContext } from '../shared/tls.js';
import { LobbyFront, type LobbyOptions } from './server.js';

export { LobbyFront, type LobbyDeps, type LobbyOptions } from './server.js';

/** The only place the lobby front reads the app config. */
export function lobbyOptions(config: Config): LobbyOptions {
  return {
    host: config.lobbyHost,
    httpPort: config.lobbyHttpPort,
    udpPort: config.lobbyUdpPort,
    timing: {
      serverConnectTimeoutMs: config.lobbyServerConnectTimeout,
      connectRequestIntervalMs: config.lobbyConnectRequestInterval,
      connectTimeoutMs: config.lobbyConnectTimeout,
    },
    maxLobbies: config.maxLobbies,
    ...connectionLimits(config),
    denyPrivatePeers: config.denyPrivatePeers,
    pingIntervalMs: config.lobbyPingInterval,
  };
}

/** The Orion-compatible lobbies, configured from `deps.config`; HTTPS and WSS with `tls`. */
export function createLobbyFront(deps: FrontDeps, tls: TlsContext | null = null): Front {
  const { config, ...shared } = deps;
  return new LobbyFront({ ...lobbyOptions(config), tls }, shared);
}
