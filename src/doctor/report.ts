// What `noray doctor` found, turned into checks, a verdict a person understands and an exit
// code. Pure: the probes (probes.ts) fill DoctorFindings, this only reads them.
import type { Endpoint } from '../core/endpoint.js';
import type { ConnectFailure } from './control.js';

/** 0: nothing wrong. 1: something players need does not work. 3: works, but only through the relay. */
export const EXIT_OK = 0;
export const EXIT_PROBLEM = 1;
export const EXIT_RELAY_ONLY = 3;

export interface DoctorTarget {
  readonly host: string;
  /** The address `host` resolved to (null when it did not). */
  readonly address: string | null;
  readonly controlPort: number;
  readonly registrarPort: number;
  /** The server's NORAY_STUN_ALT_PORT as the doctor was told (null: not tried). */
  readonly stunPort: number | null;
  /** The relay range the operator expects (`--relay-ports`), to name in advice. */
  readonly relayRange: string;
}


export interface DoctorFindings {
  readonly target: DoctorTarget;
  readonly resolveError?: string;
  /** TCP connect + register-host. Absent when the name did not resolve. */
  readonly control?: { readonly ok: true; readonly ms: number; readonly oid: string } | { readonly ok: false; readonly failure: ConnectFailure };
  /** The UDP registrar: the reply to the PrivateID (null: none). Absent when control failed. */
  readonly registrar?: { readonly reply: string | null; readonly ms: number };
  /** Mapped addresses of one socket seen from the registrar port and the alt port (null: no STUN answer). */
  readonly mapping?: { readonly local: Endpoint; readonly registrar: Endpoint | null; readonly alt: Endpoint | null };
  /** The relay round trip: per relay port handed out, whether datagrams sent to it got through. */
  readonly relay?:
    | { readonly ok: true; readonly ports: ReadonlyArray<{ readonly port: number; readonly through: boolean }>; readonly ms: number | null }
    | { readonly ok: false; readonly error: string };
}

export type Status = 'ok' | 'info' | 'warn' | 'fail' | 'skip';

export interface Check {
  readonly id: 'resolve' | 'control' | 'registrar' | 'mapping' | 'relay' | 'relay-ports';
  readonly status: Status;
  readonly text: string;
}

export type MappingBehaviour = 'no-nat' | 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export interface DoctorReport {
  readonly target: DoctorTarget;
  readonly checks: readonly Check[];
  /** The external address the server sees this machine's UDP as (null: not learnt). */
  readonly externalAddress: string | null;
  readonly mapping: MappingBehaviour;
  /** The one socket's address as the registrar port and the alt port saw it (null: no STUN answer). */
  readonly seen: { readonly fromRegistrarPort: string | null; readonly fromAltPort: string | null };
  /** What to tell a person, most important first. */
  readonly verdict: readonly string[];
  readonly exitCode: number;
}

/** Ends a clause as a sentence (no `?.`). */
const sentence = (text: string) => (/[.?!]$/.test(text) ? text : `${text}.`);

const show = (endpoint: Endpoint) => (endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`);

/** `49152-49156` for consecutive ports, else `49152, 49160, 49170`. */
export function portList(ports: readonly number[]): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j + 1;
  }
  return parts.join(', ');
}

export function mappingBehaviour(mapping: DoctorFindings['mapping']): MappingBehaviour {
  if (!mapping || mapping.registrar === null) return 'unknown';
  const { local, registrar, alt } = mapping;
  if (alt !== null && (alt.address !== registrar.address || alt.port !== registrar.port)) return 'endpoint-dependent';
  if (registrar.address === local.address && registrar.port === local.port) return 'no-nat';
  return alt === null ? 'unknown' : 'endpoint-independent';
}

export function buildReport(findings: DoctorFindings): DoctorReport {
  const { target } = findings;
  const checks: Check[] = [];
  const verdict: string[] = [];
  let problem = false;
  let relayOnly = false;
  const server = target.address ?? target.host;

  if (findings.resolveError !== undefined) {
    checks.push({ id: 'resolve', status: 'fail', text: `cannot resolve ${target.host}: ${findings.resolveError}` });
    verdict.push(`${target.host} does not resolve (${findings.resolveError}): check the name, or pass the server's IP address.`);
    return { target, checks, externalAddress: null, mapping: 'unknown', seen: { fromRegistrarPort: null, fromAltPort: null }, verdict, exitCode: EXIT_PROBLEM };
  }

  const control = findings.control;
  if (control?.ok) {
    checks.push({ id: 'control', status: 'ok', text: `TCP ${server}:${target.controlPort} answers; register-host gave OpenID ${control.oid} (${control.ms} ms)` });
  } else if (control) {
    const { failure } = control;
    const why =
      failure.kind === 'refused'
        ? `nothing listens on TCP ${server}:${target.controlPort} (connection refused): is noray running there, with NORAY_SOCKET_PORT=${target.controlPort}?`
        : failure.kind === 'timeout'
          ? `TCP ${server}:${target.controlPort} does not answer (timed out): a firewall drops it; open TCP ${target.controlPort} on the server`
          : failure.kind === 'protocol'
            ? `TCP ${server}:${target.controlPort} answers, but ${failure.message}`
            : `cannot reach TCP ${server}:${target.controlPort}: ${failure.message}`;
    checks.push({ id: 'control', status: 'fail', text: why });
    verdict.push(`The control port is unreachable, so no game can register: ${sentence(why)}`);
    problem = true;
  }

  const registrar = findings.registrar;
  let registered = false;
  if (registrar) {
    if (registrar.reply === 'OK') {
      registered = true;
      checks.push({ id: 'registrar', status: 'ok', text: `UDP ${server}:${target.registrarPort} answered OK (${registrar.ms} ms)` });
    } else if (registrar.reply === null) {
      const why = `UDP ${server}:${target.registrarPort} (the registrar) gets no answer: open UDP ${target.registrarPort} on the server (NORAY_UDP_REGISTRAR_PORT)`;
      checks.push({ id: 'registrar', status: 'fail', text: why });
      verdict.push(`${why}. Without it netfox's register_remote() times out and nobody can connect, not even through the relay.`);
      problem = true;
    } else {
      checks.push({ id: 'registrar', status: 'fail', text: `the registrar answered "${registrar.reply}" instead of OK` });
      verdict.push(`The registrar refused this machine ("${registrar.reply}"): the server may deny this network (NORAY_DENY_PRIVATE_PEERS).`);
      problem = true;
    }
  } else if (control?.ok) {
    checks.push({ id: 'registrar', status: 'skip', text: 'not tried' });
  }

  const behaviour = mappingBehaviour(findings.mapping);
  const mapping = findings.mapping;
  const external = mapping?.registrar ? show(mapping.registrar) : null;
  if (mapping) {
    if (mapping.registrar === null) {
      checks.push({ id: 'mapping', status: 'info', text: `UDP ${target.registrarPort} answers no STUN (a noray older than STUN support?): NAT mapping not tested` });
    } else if (behaviour === 'endpoint-dependent') {
      const alt = mapping.alt as Endpoint;
      checks.push({
        id: 'mapping',
        status: 'warn',
        text: `endpoint-dependent (symmetric NAT): one socket is seen as ${show(mapping.registrar)} from port ${target.registrarPort} and as ${show(alt)} from port ${target.stunPort}`,
      });
      verdict.push(
        `This network's NAT is symmetric (a new external port for every destination): NAT punchthrough (connect) from here will fail. ` +
          'Players on this network need the relay (connect-relay).',
      );
      relayOnly = true;
    } else if (behaviour === 'no-nat') {
      checks.push({ id: 'mapping', status: 'ok', text: `no NAT: the server sees this machine as its own address ${show(mapping.registrar)}` });
    } else if (behaviour === 'endpoint-independent') {
      checks.push({
        id: 'mapping',
        status: 'ok',
        text: `endpoint-independent: seen as ${show(mapping.registrar)} from both port ${target.registrarPort} and port ${target.stunPort}; punchthrough can work`,
      });
    } else {
      const how = target.stunPort === null ? 'pass --stun-port' : `set NORAY_STUN_ALT_PORT=${target.stunPort} on the server and open UDP ${target.stunPort}`;
      checks.push({
        id: 'mapping',
        status: 'info',
        text: `seen as ${show(mapping.registrar)}; mapping behaviour not tested: no STUN answer on a second port (${how})`,
      });
    }
  }

  const relay = findings.relay;
  if (relay && !relay.ok) {
    checks.push({ id: 'relay', status: 'fail', text: `connect-relay failed: ${relay.error}` });
    verdict.push(`The server refused a relay (${relay.error}): players behind symmetric NATs cannot connect.`);
    problem = true;
  } else if (relay?.ok) {
    const through = relay.ports.filter((p) => p.through).map((p) => p.port);
    const blocked = relay.ports.filter((p) => !p.through).map((p) => p.port);
    if (blocked.length === 0) {
      checks.push({ id: 'relay', status: 'ok', text: `round trip through the relay in ${relay.ms} ms` });
      checks.push({ id: 'relay-ports', status: 'ok', text: `all ${through.length} relay ports sampled pass traffic (UDP ${portList(through)})` });
    } else {
      const open = `open UDP ${target.relayRange} (the server's NORAY_UDP_RELAY_PORTS) on the server and in any firewall in front of it`;
      if (through.length === 0) {
        checks.push({ id: 'relay', status: 'fail', text: 'nothing came back through the relay' });
        checks.push({ id: 'relay-ports', status: 'fail', text: `no traffic through any of the ${blocked.length} relay ports sampled (UDP ${portList(blocked)})` });
        verdict.push(
          `Relay ports ${target.relayRange} look blocked by a firewall (nothing got through UDP ${portList(blocked)}, while the registrar port works): ${open}. ` +
            'Until then the relay fails, and players behind symmetric NATs cannot connect.',
        );
      } else {
        checks.push({ id: 'relay', status: 'fail', text: `round trip through the relay works on some ports only` });
        checks.push({ id: 'relay-ports', status: 'fail', text: `UDP ${portList(blocked)} blocked, UDP ${portList(through)} pass traffic` });
        verdict.push(`Part of the relay range looks blocked by a firewall (UDP ${portList(blocked)} got nothing through): ${open}.`);
      }
      problem = true;
    }
  } else if (registered) {
    checks.push({ id: 'relay', status: 'skip', text: 'not tried' });
  }

  if (!problem && relayOnly) verdict.push('The relay works: games from this network connect through it.');
  if (!problem && !relayOnly) {
    const punch =
      behaviour === 'no-nat'
        ? ', and this machine has a public address (no NAT): punchthrough can work'
        : behaviour === 'endpoint-independent'
          ? ', and this NAT keeps one mapping for every destination: punchthrough can work'
          : '';
    verdict.push(`No problem found: the control port, the registrar and the relay work from here${punch}.`);
  }
  const exitCode = problem ? EXIT_PROBLEM : relayOnly ? EXIT_RELAY_ONLY : EXIT_OK;
  const seen = { fromRegistrarPort: external, fromAltPort: mapping?.alt ? show(mapping.alt) : null };
  return { target, checks, externalAddress: external, mapping: behaviour, seen, verdict, exitCode };
}

const MARK: Record<Status, string> = { ok: 'ok  ', info: 'info', warn: 'warn', fail: 'FAIL', skip: 'skip' };
const TITLE: Record<Check['id'], string> = {
  resolve: 'name',
  control: 'control port',
  registrar: 'registrar',
  mapping: 'NAT mapping',
  relay: 'relay',
  'relay-ports': 'relay ports',
};

/** The report as a person reads it in a terminal. */
export function formatReport(report: DoctorReport): string {
  const { target } = report;
  const ports = [`control TCP ${target.controlPort}`, `registrar UDP ${target.registrarPort}`];
  if (target.stunPort !== null) ports.push(`STUN alt UDP ${target.stunPort}`);
  const lines = [`noray doctor: ${target.host}${target.address && target.address !== target.host ? ` (${target.address})` : ''}, ${ports.join(', ')}`];
  for (const check of report.checks) lines.push(`  ${MARK[check.status]}  ${TITLE[check.id].padEnd(12)}  ${check.text}`);
  if (report.externalAddress !== null) lines.push(`  external address seen by the server: ${report.externalAddress}`);
  lines.push('', ...report.verdict.map((line) => `=> ${line}`), `exit code ${report.exitCode}`);
  return `${lines.join('\n')}\n`;
}
