import { option } from '../option.js';
import {
  parseByteSize,
  parseCharset,
  parseDuration,
  parseEnum,
  parseHost,
  parseInteger,
  parseOptionalPort,
  parseOptionalPortList,
} from '../units.js';

/** nanoid's url alphabet, upstream noray's default for both ids. */
export const URL_ALPHABET = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict';

export const norayOptions = {
  oidLength: option({
    env: 'NORAY_OID_LENGTH',
    default: '21',
    parse: (raw) => parseInteger(raw, 4, 256),
    describe: 'Length of server-made OpenIDs',
  }),
  oidCharset: option({
    env: 'NORAY_OID_CHARSET',
    default: URL_ALPHABET,
    parse: parseCharset,
    describe: 'Characters of server-made OpenIDs',
  }),
  pidLength: option({
    env: 'NORAY_PID_LENGTH',
    default: '128',
    parse: (raw) => parseInteger(raw, 16, 1024),
    describe: 'Length of PrivateIDs (secrets)',
  }),
  pidCharset: option({
    env: 'NORAY_PID_CHARSET',
    default: URL_ALPHABET,
    parse: parseCharset,
    describe: 'Characters of PrivateIDs',
  }),
  oidReservation: option({
    env: 'NORAY_OID_RESERVATION',
    default: '30s',
    parse: parseDuration,
    describe:
      'A custom OpenID freed by a disconnect stays reserved this long: only `register-host ID OLDPID` with its last PrivateID takes it back (0 turns it off)',
  }),
  connectRate: option({
    env: 'NORAY_CONNECT_RATE',
    default: '10',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'connect/connect-relay requests per second one control connection may send that notify a host; over it: `error`, the host is not notified',
  }),
  connectBurst: option({
    env: 'NORAY_CONNECT_BURST',
    default: '20',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'connect/connect-relay requests one control connection may send at once before NORAY_CONNECT_RATE applies',
  }),
  connectHostRate: option({
    env: 'NORAY_CONNECT_HOST_RATE',
    default: '50',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'connect/connect-relay notifications per second one host receives, from all requesters together; over it the requester gets `error`',
  }),
  connectHostBurst: option({
    env: 'NORAY_CONNECT_HOST_BURST',
    default: '100',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'connect/connect-relay notifications one host may receive at once before NORAY_CONNECT_HOST_RATE applies',
  }),
  connectCoalesce: option({
    env: 'NORAY_CONNECT_COALESCE',
    default: '1s',
    parse: parseDuration,
    describe: 'An identical connect/connect-relay notification to the same host within this window is sent once (0 turns it off)',
  }),
  unknownOidRate: option({
    env: 'NORAY_UNKNOWN_OID_RATE',
    default: '5',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'connect/connect-relay to unknown OpenIDs per second from one source IP (IPv6: per /64); over it the connection is closed',
  }),
  unknownOidBurst: option({
    env: 'NORAY_UNKNOWN_OID_BURST',
    default: '20',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'connect/connect-relay to unknown OpenIDs one source IP may send at once before NORAY_UNKNOWN_OID_RATE applies',
  }),
  socketHost: option({
    env: 'NORAY_SOCKET_HOST',
    default: '0.0.0.0',
    parse: parseHost,
    describe: 'Listen address of the noray TCP control channel',
  }),
  socketPort: option({
    env: 'NORAY_SOCKET_PORT',
    default: '8890',
    parse: parseOptionalPort,
    describe: 'Port of the noray TCP control channel, or "off" to disable the noray front',
  }),
  socketMaxLineLength: option({
    env: 'NORAY_SOCKET_MAX_LINE_LENGTH',
    default: '4kb',
    parse: parseByteSize,
    describe: 'Longest accepted control line in bytes; longer lines get an error and the connection is closed',
  }),
  udpHost: option({
    env: 'NORAY_UDP_HOST',
    default: '0.0.0.0',
    parse: parseHost,
    describe: 'Bind address of the UDP registrar and relay ports',
  }),
  udpRegistrarPort: option({
    env: 'NORAY_UDP_REGISTRAR_PORT',
    default: '8809',
    parse: parseOptionalPort,
    describe: 'Port of the UDP registrar, or "off"',
  }),
  udpRegistrarReplyRate: option({
    env: 'NORAY_UDP_REGISTRAR_REPLY_RATE',
    default: '1000',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Registrar replies per second to one source IP (IPv6: per /64); registrations above it are still taken, unanswered',
  }),
  udpRegistrarReplyBurst: option({
    env: 'NORAY_UDP_REGISTRAR_REPLY_BURST',
    default: '2000',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Registrar replies one source IP may get at once before the rate applies',
  }),
  stunAltPort: option({
    env: 'NORAY_STUN_ALT_PORT',
    default: 'off',
    parse: parseOptionalPort,
    describe:
      'A second UDP port answering STUN Binding requests (the registrar port answers them too), or "off"; with it `noray doctor` tells endpoint-independent from symmetric NATs. 3478 is the STUN port, what a `stun:HOST` URL means',
  }),
  udpRelayPorts: option({
    env: 'NORAY_UDP_RELAY_PORTS',
    default: '49152-51200',
    parse: parseOptionalPortList,
    describe: 'Relay ports (e.g. 49152-51200, 2048+3, 2048,2049), or "off" to disable relaying',
  }),
  udpRelayMinPorts: option({
    env: 'NORAY_UDP_RELAY_MIN_PORTS',
    default: '1',
    parse: (raw) => parseInteger(raw, 1, 65536),
    describe:
      'Fewest relay ports that must be bound for the server to start; ports left out by the open-file limit or taken by others count as not bound',
  }),
  udpRelayTimeout: option({
    env: 'NORAY_UDP_RELAY_TIMEOUT',
    default: '30s',
    parse: parseDuration,
    describe: 'A relay without traffic for this long is freed',
  }),
  udpRelayCleanupInterval: option({
    env: 'NORAY_UDP_RELAY_CLEANUP_INTERVAL',
    default: '30s',
    parse: parseDuration,
    describe: 'How often idle relays are looked for',
  }),
  udpRelayMaxIndividualTraffic: option({
    env: 'NORAY_UDP_RELAY_MAX_INDIVIDUAL_TRAFFIC',
    default: '128kb',
    parse: parseByteSize,
    describe: 'Bandwidth limit of one relay, bytes per second',
  }),
  udpRelayMaxGlobalTraffic: option({
    env: 'NORAY_UDP_RELAY_MAX_GLOBAL_TRAFFIC',
    default: '1Gb',
    parse: parseByteSize,
    describe: 'Bandwidth limit of all relays together, bytes per second',
  }),
  udpRelayTrafficInterval: option({
    env: 'NORAY_UDP_RELAY_TRAFFIC_INTERVAL',
    default: '100ms',
    parse: parseDuration,
    describe: 'Time slice over which bandwidth is measured',
  }),
  udpRelayMaxLifetimeDuration: option({
    env: 'NORAY_UDP_RELAY_MAX_LIFETIME_DURATION',
    default: '4hr',
    parse: parseDuration,
    describe: 'A relay stops forwarding this long after it was made',
  }),
  udpRelayMaxLifetimeTraffic: option({
    env: 'NORAY_UDP_RELAY_MAX_LIFETIME_TRAFFIC',
    default: '4Gb',
    parse: parseByteSize,
    describe: 'A relay stops forwarding after carrying this many bytes',
  }),
  udpRelaySocketBuffer: option({
    env: 'NORAY_UDP_RELAY_SOCKET_BUFFER',
    default: '4mb',
    parse: parseByteSize,
    describe: 'Receive and send buffer size of each relay socket (absorbs bursts)',
  }),
  udpRelayMaxPerSource: option({
    env: 'NORAY_UDP_RELAY_MAX_PER_SOURCE',
    default: '64',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe:
      'Most relay ports charged to one source IP (IPv6: per /64) at once, until they expire; a host with 32 relayed players needs at most 64',
  }),
  udpRelayMaxPerSession: option({
    env: 'NORAY_UDP_RELAY_MAX_PER_SESSION',
    default: '16',
    parse: (raw) => parseInteger(raw, 1, 1_000_000),
    describe: 'Most relay ports charged to one registered session at once (each connect-relay charges at most 2)',
  }),
  udpRelayEngine: option({
    env: 'NORAY_UDP_RELAY_ENGINE',
    default: 'auto',
    parse: parseEnum(['auto', 'native', 'js'] as const),
    describe:
      'Relay data path: native (the addon npm ci builds where g++, make and python3 are installed), js (Node dgram), or auto (native where it built, else js; logged at start)',
  }),
  udpRelayRelearnAfter: option({
    env: 'NORAY_UDP_RELAY_RELEARN_AFTER',
    default: '3s',
    parse: parseDuration,
    describe:
      'A player heard on a relay port from another NAT mapping than its registered one is learned there; that mapping is locked until silent this long',
  }),
};
