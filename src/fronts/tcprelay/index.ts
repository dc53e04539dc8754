import type { Front, FrontDeps } from '../front.js';
import { sourceLimits } from '../shared/read-throttle.js';
import { TcpRelayServer, type TcpRelayOptions } from './server.js';

export type { TcpRelayOptions } from './server.js';

/** The only place the front reads the config: the fields it uses, under its own names. */
export function tcpRelayOptions(config: FrontDeps['config']): TcpRelayOptions {
  if (config.tcprelayPort === null) throw new Error('tcprelay is switched off');
  return {
    host: config.tcprelayHost,
    port: config.tcprelayPort,
    maxFrameSize: config.tcprelayMaxFrameSize,
    sendBuffer: config.tcprelaySendBuffer,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    messageRate: config.messageRate,
    messageBurst: config.messageBurst,
    byteRate: config.byteRate,
    byteBurst: config.byteBurst,
    ...sourceLimits(config),
    loginTimeoutMs: config.loginTimeout,
    idReservationMs: config.tcprelayIdReservation,
    guessRate: config.tcprelayGuessRate,
    guessBurst: config.tcprelayGuessBurst,
  };
}

/** The TCP message relay (RoccoRelayServer compatible). */
export function createTcpRelayFront(deps: FrontDeps): Front {
  const { config, ...shared } = deps;
  return new TcpRelayServer(tcpRelayOptions(config), shared);
}
