import type { Config } from '../../config/schema.js';
import { connectionLimits } from '../shared/connection-limits.js';
import type { Front, FrontDeps } from '../front.js';
import type { TlsContext } from '../shared/tls.js';
import { WsRelayFront, type WsRelayOptions } from './server.js';

export type { WsRelayDeps, WsRelayOptions } from './server.js';

/** The one place the wsrelay front reads the config. */
export function wsRelayOptions(config: Config): WsRelayOptions {
  return {
    host: config.wsrelayHost,
    port: config.wsrelayPort,
    maxMessageSize: config.wsrelayMaxMessageSize,
    sendBuffer: config.wsrelaySendBuffer,
    pingIntervalMs: config.wsrelayPingInterval,
    ...connectionLimits(config),
    loginTimeoutMs: config.loginTimeout,
    maxRooms: config.maxRooms,
    guessRate: config.wsrelayGuessRate,
    guessBurst: config.wsrelayGuessBurst,
  };
}

/** The WebSocket message relay (CarParty compatible), configured from `deps.config`; WSS with `tls`. */
export function createWsRelayFront({ config, ...deps }: FrontDeps, tls: TlsContext | null = null): Front {
  return new WsRelayFront(deps, { ...wsRelayOptions(config), tls });
}
