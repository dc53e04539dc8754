import { option } from '../option.js';
import { ConfigValueError, parseBoolean, parseByteSize, parseDuration, parseInteger, parsePositiveDuration } from '../units.js';

/** Abuse limits shared by every front. */
export const limitOptions = {
  maxConnections: option({
    env: 'NORAY_MAX_CONNECTIONS',
    default: '10000',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Most concurrent TCP/WebSocket connections per front',
  }),
  maxConnectionsPerIp: option({
    env: 'NORAY_MAX_CONNECTIONS_PER_IP',
    default: '256',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Most concurrent connections per front from one IP address (players behind one NAT share it)',
  }),
  messageRate: option({
    env: 'NORAY_MESSAGE_RATE',
    default: '500',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe: 'Commands/messages/frames per second one connection may send on average (token bucket)',
  }),
  messageBurst: option({
    env: 'NORAY_MESSAGE_BURST',
    default: '1000',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe: 'Bucket size of the message rate: how many may arrive at once',
  }),
  byteRate: option({
    env: 'NORAY_BYTE_RATE',
    default: '1mb',
    parse: positiveByteSize,
    describe: 'Bytes per second one wsrelay/lobby WebSocket or tcprelay connection may send on average (token bucket); over it the connection is closed (WebSocket 1008, tcprelay ERROR frame)',
  }),
  byteBurst: option({
    env: 'NORAY_BYTE_BURST',
    default: '4mb',
    parse: positiveByteSize,
    describe: 'Bucket size of the byte rate: how many bytes may arrive at once (keep it at least the largest message allowed)',
  }),
  sourceMessageRate: option({
    env: 'NORAY_SOURCE_MESSAGE_RATE',
    default: '2000',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe:
      'Commands/messages/frames per second one source IP (IPv6: /64) may send over all its connections of one front (token bucket); over it reading pauses until the debt is repaid, nobody is closed',
  }),
  sourceMessageBurst: option({
    env: 'NORAY_SOURCE_MESSAGE_BURST',
    default: '4000',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe: 'Bucket size of the per-source message rate: how many may arrive at once from one source',
  }),
  sourceByteRate: option({
    env: 'NORAY_SOURCE_BYTE_RATE',
    default: '4mb',
    parse: positiveByteSize,
    describe:
      'Bytes per second one source IP (IPv6: /64) may send over all its connections of one front (token bucket); over it reading pauses until the debt is repaid, nobody is closed',
  }),
  sourceByteBurst: option({
    env: 'NORAY_SOURCE_BYTE_BURST',
    default: '8mb',
    parse: positiveByteSize,
    describe: 'Bucket size of the per-source byte rate (keep it at least the largest message allowed)',
  }),
  maxSessions: option({
    env: 'NORAY_MAX_SESSIONS',
    default: '20000',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe: 'Most registered noray hosts (sessions) at once',
  }),
  maxLobbies: option({
    env: 'NORAY_MAX_LOBBIES',
    default: '5000',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe: 'Most lobbies at once',
  }),
  maxRooms: option({
    env: 'NORAY_MAX_ROOMS',
    default: '5000',
    parse: (raw) => parseInteger(raw, 1, 10_000_000),
    describe: 'Most message-relay rooms (wsrelay server codes) at once',
  }),
  loginTimeout: option({
    env: 'NORAY_LOGIN_TIMEOUT',
    default: '30s',
    parse: parseDuration,
    describe: 'Connections that have not identified themselves by then are closed (never after noray register-host)',
  }),
  handshakeTimeout: option({
    env: 'NORAY_HANDSHAKE_TIMEOUT',
    default: '5s',
    parse: parsePositiveDuration,
    describe:
      'HTTP listeners (lobby, wsrelay, ops): a connection whose request or WebSocket upgrade is not complete by then (or that stays idle that long between requests) is closed',
  }),
  denyPrivatePeers: option({
    env: 'NORAY_DENY_PRIVATE_PEERS',
    default: 'false',
    parse: parseBoolean,
    describe: 'Refuse registering from and relaying to private, loopback and link-local addresses (turn on in production)',
  }),
};

function positiveByteSize(raw: string): number {
  const bytes = parseByteSize(raw);
  if (bytes < 1 || bytes > 2 ** 40) throw new ConfigValueError('expected a size from 1b to 1tb');
  return bytes;
}
