import type { Config } from '../../config/schema.js';

/** The per-front connection limits every WebSocket front applies (README, Limits). */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Messages per second one connection may send on average, and the burst allowed above it. */
  readonly messageRate: number;
  readonly messageBurst: number;
  /** Bytes per second one connection may send on average (message payloads), and the burst above it. */
  readonly byteRate: number;
  readonly byteBurst: number;
  /** HTTP request or WebSocket upgrade deadline, and the idle limit between requests (see httpDeadlines). */
  readonly handshakeTimeoutMs: number;
}

/** The connection limits of the config, for a front's options. */
export function connectionLimits(config: Config): ConnectionLimits {
  return {
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    messageRate: config.messageRate,
    messageBurst: config.messageBurst,
    byteRate: config.byteRate,
    byteBurst: config.byteBurst,
    handshakeTimeoutMs: config.handshakeTimeout,
  };
}
