// The doctor's verdict from findings alone: each broken setup is named, with its exit code.
import { describe, expect, it } from 'vitest';
import { buildReport, EXIT_OK, EXIT_PROBLEM, EXIT_RELAY_ONLY, formatReport, mappingBehaviour, portList, type DoctorFindings } from '../../src/doctor/report.js';

const target = { host: 'noray.example', address: '203.0.113.1', controlPort: 8890, registrarPort: 8809, stunPort: 3478, relayRange: '49152-51200' };
const local = { address: '10.0.0.2', port: 40000 };
const seen = { address: '198.51.100.7', port: 40000 };
const healthy: DoctorFindings = {
  target,
  control: { ok: true, ms: 20, oid: 'abc' },
  registrar: { reply: 'OK', ms: 10 },
  mapping: { local, registrar: seen, alt: seen },
  relay: { ok: true, ms: 15, ports: [49152, 49153, 49154].map((port) => ({ port, through: true })) },
};

describe('doctor report', () => {
  it('all good: exit 0, punchthrough can work, the external address is shown', () => {
    const report = buildReport(healthy);
    expect(report.exitCode).toBe(EXIT_OK);
    expect(report.mapping).toBe('endpoint-independent');
    expect(report.externalAddress).toBe('198.51.100.7:40000');
    expect(report.checks.map((c) => c.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(report.verdict.join(' ')).toMatch(/No problem found.*punchthrough can work/);
  });

  it('symmetric NAT: says punchthrough will fail and the relay is needed, exit 3', () => {
    const report = buildReport({ ...healthy, mapping: { local, registrar: seen, alt: { ...seen, port: 51234 } } });
    expect(report.exitCode).toBe(EXIT_RELAY_ONLY);
    expect(report.mapping).toBe('endpoint-dependent');
    const text = report.verdict.join(' ');
    expect(text).toContain('symmetric');
    expect(text).toContain('punchthrough (connect) from here will fail');
    expect(text).toContain('need the relay');
  });

  it('relay range blocked: names the range, says to open UDP, exit 1', () => {
    const report = buildReport({ ...healthy, relay: { ok: true, ms: null, ports: [49152, 49153].map((port) => ({ port, through: false })) } });
    expect(report.exitCode).toBe(EXIT_PROBLEM);
    expect(report.verdict[0]).toContain('Relay ports 49152-51200 look blocked by a firewall');
    expect(report.verdict[0]).toContain('open UDP 49152-51200');
    expect(report.checks.find((c) => c.id === 'relay-ports')?.text).toContain('UDP 49152-49153');
  });

  it('part of the range blocked, registrar silent, control refused or timing out: each named, exit 1', () => {
    const partial = buildReport({ ...healthy, relay: { ok: true, ms: 5, ports: [{ port: 49152, through: true }, { port: 49153, through: false }] } });
    expect(partial.exitCode).toBe(EXIT_PROBLEM);
    expect(partial.verdict[0]).toContain('UDP 49153 got nothing through');
    const silent = buildReport({ target, control: { ok: true, ms: 1, oid: 'a' }, registrar: { reply: null, ms: 3000 }, mapping: { local, registrar: null, alt: null } });
    expect(silent.exitCode).toBe(EXIT_PROBLEM);
    expect(silent.verdict[0]).toContain('open UDP 8809');
    const refused = buildReport({ target, control: { ok: false, failure: { kind: 'refused', message: 'ECONNREFUSED' } } });
    expect(refused.verdict[0]).toContain('nothing listens on TCP 203.0.113.1:8890');
    const dropped = buildReport({ target, control: { ok: false, failure: { kind: 'timeout', message: 'no answer' } } });
    expect(dropped.verdict[0]).toContain('open TCP 8890');
    expect(buildReport({ target: { ...target, address: null }, resolveError: 'ENOTFOUND' }).exitCode).toBe(EXIT_PROBLEM);
  });

  it('mapping behaviour: no NAT, unknown without a second STUN answer', () => {
    expect(mappingBehaviour({ local: seen, registrar: seen, alt: seen })).toBe('no-nat');
    expect(mappingBehaviour({ local, registrar: seen, alt: null })).toBe('unknown');
    expect(mappingBehaviour({ local, registrar: null, alt: null })).toBe('unknown');
    const unknown = buildReport({ ...healthy, mapping: { local, registrar: seen, alt: null } });
    expect(unknown.exitCode).toBe(EXIT_OK);
    expect(unknown.checks.find((c) => c.id === 'mapping')?.text).toContain('NORAY_STUN_ALT_PORT=3478');
  });

  it('port lists read as ranges; the text report ends with the verdict and exit code', () => {
    expect(portList([49154, 49152, 49153, 49160, 49161, 50000])).toBe('49152-49154, 49160-49161, 50000');
    const text = formatReport(buildReport(healthy));
    expect(text).toMatch(/^noray doctor: noray\.example \(203\.0\.113\.1\)/);
    expect(text.trimEnd().split('\n').at(-1)).toBe('exit code 0');
  });
});
