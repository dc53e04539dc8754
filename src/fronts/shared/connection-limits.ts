import type { Config } from '../../config/schema.js';
import { sourceLimits, type SourceLimits } from './read-throttle.js';

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

/** The connection limits of the config and the per-source read budget (see read-throttle.ts), for a front's options. */
export function connectionLimits(config: Config): ConnectionLimits & SourceLimits {
  return {
    ...sourceLimits(config),
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    messageRate: config.messageRate,
    messageBurst: config.messageBurst,
    byteRate: config.byteRate,
    byteBurst: config.byteBurst,
    handshakeTimeoutMs: config.handshakeTimeout,
  };
}
