import type { Config } from './schema.js';

/**
 * Rules across options, checked once the config is whole (single options are checked as they
 * are parsed): two listeners on one port, an id space too small for the sessions it must name,
 * PrivateIDs short enough to guess, a relay port minimum above the ports configured. Returns
 * every problem, in words that name the options.
 */
export function configProblems(config: Config): string[] {
  return [...portClashes(config), ...idSpaceProblems(config), ...relayPortProblems(config)];
}

function relayPortProblems(config: Config): string[] {
  const configured = config.udpRelayPorts?.length;
  if (configured === undefined || configured >= config.udpRelayMinPorts) return [];
  return [
    `NORAY_UDP_RELAY_MIN_PORTS=${config.udpRelayMinPorts} is more than the ${configured} ports of NORAY_UDP_RELAY_PORTS: ` +
      'lower the minimum or configure more ports',
  ];
}

interface Listener {
  readonly name: string;
  readonly host: string;
  readonly ports: readonly number[];
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** Two listeners can collide when their hosts are equal or one listens on every address. */
function hostsOverlap(a: string, b: string): boolean {
  return a === b || WILDCARDS.has(a) || WILDCARDS.has(b);
}

function portClashes(config: Config): string[] {
  const tcp: Listener[] = [
    { name: 'NORAY_SOCKET_PORT', host: config.socketHost, ports: one(config.socketPort) },
    { name: 'NORAY_HTTP_PORT', host: config.httpHost, ports: one(config.httpPort) },
    { name: 'NORAY_LOBBY_HTTP_PORT', host: config.lobbyHost, ports: one(config.lobbyHttpPort) },
    { name: 'NORAY_WSRELAY_PORT', host: config.wsrelayHost, ports: one(config.wsrelayPort) },
    { name: 'NORAY_TCPRELAY_PORT', host: config.tcprelayHost, ports: one(config.tcprelayPort) },
  ];
  const udp: Listener[] = [
    { name: 'NORAY_UDP_REGISTRAR_PORT', host: config.udpHost, ports: one(config.udpRegistrarPort) },
    { name: 'NORAY_STUN_ALT_PORT', host: config.udpHost, ports: one(config.stunAltPort) },
    { name: 'NORAY_UDP_RELAY_PORTS', host: config.udpHost, ports: config.udpRelayPorts ?? [] },
    { name: 'NORAY_LOBBY_UDP_PORT', host: config.lobbyHost, ports: one(config.lobbyUdpPort) },
  ];
  return [...clashes(tcp, 'TCP'), ...clashes(udp, 'UDP')];
}

function one(port: number | null): number[] {
  return port === null ? [] : [port];
}

function clashes(listeners: readonly Listener[], protocol: string): string[] {
  const problems: string[] = [];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const a = listeners[i] as Listener;
      const b = listeners[j] as Listener;
      if (!hostsOverlap(a.host, b.host)) continue;
      // Port 0 asks the system for a free port: never a clash.
      const shared = a.ports.filter((port) => port !== 0 && b.ports.includes(port));
      if (shared.length > 0) {
        const shown = shared.length > 3 ? `${shared.slice(0, 3).join(', ')}, ... (${shared.length} ports)` : shared.join(', ');
        problems.push(`${a.name} and ${b.name} both want ${protocol} port ${shown}: give each its own`);
      }
    }
  }
  return problems;
}

/** Ids are drawn at random; with at least this many ids per session a draw almost never collides. */
export const MIN_IDS_PER_SESSION = 16;
/** PrivateIDs are secrets: at least 2^64 possible values, so they cannot be guessed. */
const MIN_SECRET_BITS = 64;

function idSpaceProblems(config: Config): string[] {
  const problems: string[] = [];
  const oidBits = bits(config.oidCharset, config.oidLength);
  const neededBits = Math.log2(config.maxSessions * MIN_IDS_PER_SESSION);
  if (oidBits < neededBits) {
    problems.push(
      `NORAY_OID_CHARSET^NORAY_OID_LENGTH (${[...config.oidCharset].length}^${config.oidLength}) is too few OpenIDs for ` +
        `NORAY_MAX_SESSIONS=${config.maxSessions}: need at least ${MIN_IDS_PER_SESSION} per session; make ids longer or allow fewer sessions`,
    );
  }
  const pidBits = bits(config.pidCharset, config.pidLength);
  if (pidBits < MIN_SECRET_BITS) {
    problems.push(
      `NORAY_PID_CHARSET^NORAY_PID_LENGTH (${[...config.pidCharset].length}^${config.pidLength}, about 2^${Math.floor(pidBits)}) ` +
        `makes PrivateIDs guessable: they need at least 2^${MIN_SECRET_BITS} values`,
    );
  }
  return problems;
}

function bits(charset: string, length: number): number {
  return Math.log2([...charset].length) * length;
}
