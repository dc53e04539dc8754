// `noray doctor`'s probes: the doctor is a noray client from this machine. It registers like
// netfox (TCP register-host, the PrivateID to the UDP registrar), asks one UDP socket's mapping
// from two server ports over STUN, and plays host and several clients itself for a relay round
// trip, which samples as many relay ports.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { normalizeAddress, type Endpoint } from '../core/endpoint.js';
import { ControlConnection, type ConnectFailure } from './control.js';
import type { DoctorFindings, DoctorTarget } from './report.js';
import { ProbeSocket, RESEND_MS } from './udp.js';

export interface DoctorOptions {
  readonly host: string;
  readonly controlPort: number;
  readonly registrarPort: number;
  readonly stunPort: number | null;
  readonly relayRange: string;
  /** How long each step may wait for an answer. */
  readonly timeoutMs: number;
  /** Relay clients the doctor plays (each gets a relay port of its own; the host one more). */
  readonly relayClients: number;
}

interface Player {
  readonly control: ControlConnection;
  readonly udp: ProbeSocket;
  readonly oid: string;
}

async function resolve(host: string): Promise<{ address: string; family: 4 | 6 } | { error: string }> {
  const literal = isIP(host);
  if (literal !== 0) return { address: host, family: literal === 6 ? 6 : 4 };
  try {
    // netfox resolves IPv4 only; take IPv4 when there is one.
    const found = await lookup(host, { family: 4 }).catch(() => lookup(host));
    return { address: found.address, family: found.family === 6 ? 6 : 4 };
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

/** TCP + register-host + UDP registration; what failed, if anything. */
async function register(
  address: string,
  family: 4 | 6,
  options: DoctorOptions,
): Promise<{ player: Player; ms: number; registrarReply: string | null; registrarMs: number } | { failure: ConnectFailure } | { partial: Player; registrarReply: string | null; registrarMs: number; ms: number }> {
  const started = Date.now();
  let control: ControlConnection;
  try {
    control = await ControlConnection.open(address, options.controlPort, options.timeoutMs);
  } catch (failure) {
    return { failure: failure as ConnectFailure };
  }
  const ids = await control.registerHost(options.timeoutMs);
  if ('error' in ids) {
    control.close();
    return { failure: { kind: 'protocol', message: `register-host failed: ${ids.error} (is it a noray control port?)` } };
  }
  const ms = Date.now() - started;
  const udp = await ProbeSocket.open(family);
  const registrarStarted = Date.now();
  const registrarReply = await udp.register(ids.pid, address, options.registrarPort, options.timeoutMs);
  const player = { control, udp, oid: ids.oid };
  const registrarMs = Date.now() - registrarStarted;
  return registrarReply === 'OK' ? { player, ms, registrarReply, registrarMs } : { partial: player, registrarReply, registrarMs, ms };
}

function close(player: Player): void {
  player.control.close();
  player.udp.close();
}

/**
 * Host and clients all send to each other's relay ports every RESEND_MS until every port has
 * carried a datagram or the time is up. A datagram sent to relay port P arrives from another relay
 * port: the host's port works when the host hears any client, a client's when it hears the host.
 */
async function relayRoundTrip(address: string, host: Player, clients: readonly Player[], options: DoctorOptions): Promise<NonNullable<DoctorFindings['relay']>> {
  const links: Array<{ client: Player; hostPort: number; clientPort: number }> = [];
  for (const client of clients) {
    client.control.send('connect-relay', host.oid);
    const [toClient, toHost] = await Promise.all([
      client.control.next(['connect-relay'], options.timeoutMs),
      host.control.next(['connect-relay'], options.timeoutMs),
    ]);
    if (toClient?.command !== 'connect-relay' || toHost?.command !== 'connect-relay') {
      const error = toClient?.command === 'error' ? toClient.data : toHost?.command === 'error' ? toHost.data : `no connect-relay within ${options.timeoutMs} ms`;
      return { ok: false, error };
    }
    links.push({ client, hostPort: Number(toClient.data), clientPort: Number(toHost.data) });
  }
  const hostPort = links[0]?.hostPort ?? 0;
  const through = new Map<number, boolean>([[hostPort, false], ...links.map((link) => [link.clientPort, false] as [number, boolean])]);
  const started = Date.now();
  let firstRoundTrip: number | null = null;
  const heard = (port: number) => {
    through.set(port, true);
    if (firstRoundTrip === null && [...through.values()].filter(Boolean).length >= 2) firstRoundTrip = Date.now() - started;
  };
  const fromServer = (from: Endpoint) => from.address === address;
  const stops = [
    host.udp.listen((_message, from) => {
      if (fromServer(from) && links.some((link) => link.clientPort === from.port)) heard(hostPort);
    }),
    ...links.map((link) =>
      link.client.udp.listen((_message, from) => {
        if (fromServer(from) && from.port === link.hostPort) heard(link.clientPort);
      }),
    ),
  ];
  const payload = Buffer.from('noray doctor relay probe');
  const deadline = started + options.timeoutMs;
  while (Date.now() < deadline && [...through.values()].some((ok) => !ok)) {
    for (const link of links) {
      link.client.udp.send(payload, address, link.hostPort);
      host.udp.send(payload, address, link.clientPort);
    }
    await new Promise((r) => setTimeout(r, RESEND_MS));
  }
  for (const stop of stops) stop();
  return { ok: true, ports: [...through].map(([port, ok]) => ({ port, through: ok })), ms: firstRoundTrip };
}

export async function diagnose(options: DoctorOptions): Promise<DoctorFindings> {
  const resolved = await resolve(options.host);
  const base = { host: options.host, controlPort: options.controlPort, registrarPort: options.registrarPort, stunPort: options.stunPort, relayRange: options.relayRange };
  if ('error' in resolved) return { target: { ...base, address: null }, resolveError: resolved.error };
  const { address, family } = resolved;
  const target: DoctorTarget = { ...base, address };
  const players: Player[] = [];
  try {
    const first = await register(address, family, options);
    if ('failure' in first) return { target, control: { ok: false, failure: first.failure } };
    const host = 'player' in first ? first.player : first.partial;
    players.push(host);
    const findings = {
      target,
      control: { ok: true as const, ms: first.ms, oid: host.oid },
      registrar: { reply: first.registrarReply, ms: first.registrarMs },
    };
    // The same socket the registrar saw, asked from both ports: what a peer would see of it.
    const stunTimeoutMs = Math.min(options.timeoutMs, 2000);
    const registrarMapped = await host.udp.mappedBy(address, options.registrarPort, stunTimeoutMs);
    const altMapped = options.stunPort === null || registrarMapped === null ? null : await host.udp.mappedBy(address, options.stunPort, stunTimeoutMs);
    const local = { address: normalizeAddress(host.control.localAddress), port: host.udp.localPort };
    const mapping = { local, registrar: registrarMapped, alt: altMapped };
    if (!('player' in first)) return { ...findings, mapping };
    const clients: Player[] = [];
    for (let i = 0; i < options.relayClients; i++) {
      const client = await register(address, family, options);
      if (!('player' in client)) {
        const error = 'failure' in client ? `a second registration failed: ${client.failure.message}` : `a second registration got ${client.registrarReply ?? 'no answer'}`;
        if ('partial' in client) players.push(client.partial);
        return { ...findings, mapping, relay: { ok: false, error } };
      }
      players.push(client.player);
      clients.push(client.player);
    }
    const relay = await relayRoundTrip(address, host, clients, options);
    return { ...findings, mapping, relay };
  } finally {
    players.forEach(close);
  }
}
