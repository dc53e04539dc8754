// `noray doctor` against a real server on loopback: the built bin's exit codes and output.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { port, startApp } from '../helpers/app.js';
import { runDoctor } from '../../src/doctor/cli.js';
import type { DoctorReport } from '../../src/doctor/report.js';

function collect(): { write(text: string): void; text: string } {
  return {
    text: '',
    write(text: string) {
      this.text += text;
    },
  };
}

async function doctor(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = collect();
  const err = collect();
  const code = await runDoctor(args, out, err);
  return { code, out: out.text, err: err.text };
}

describe('noray doctor', () => {
  it('a healthy server: every check passes, exit 0, with the relay ports sampled', async () => {
    const app = await startApp({ socketPort: 0, udpRegistrarPort: 0, stunAltPort: 0, udpRelayPorts: Array.from({ length: 16 }, () => 0) });
    const relayPorts = app.ports().noray?.relay as number[];
    const { code, out } = await doctor([
      '127.0.0.1',
      '--json',
      '--port', String(port(app, 'noray', 'control')),
      '--registrar-port', String(port(app, 'noray', 'registrar')),
      '--stun-port', String(port(app, 'noray', 'stunAlt')),
      '--relay-clients', '3',
    ]);
    const report = JSON.parse(out) as DoctorReport;
    expect(code, out).toBe(0);
    expect(report.exitCode).toBe(0);
    expect(report.checks.map((c) => `${c.id}:${c.status}`)).toEqual(['control:ok', 'registrar:ok', 'mapping:ok', 'relay:ok', 'relay-ports:ok']);
    expect(report.externalAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    // One port for the host, one per client: four relay ports of the server carried traffic.
    const sampled = report.checks.find((c) => c.id === 'relay-ports')?.text ?? '';
    expect(sampled).toContain('all 4 relay ports');
    expect(relayPorts.length).toBe(16);
  }, 30_000);

  it('no control port: names it, exit 1; a registrar that is off: says to open UDP, exit 1', async () => {
    const app = await startApp({ socketPort: 0, udpRegistrarPort: null });
    const closed = await doctor(['127.0.0.1', '--port', '1', '--timeout', '1s']);
    expect(closed.code).toBe(1);
    expect(closed.out).toContain('nothing listens on TCP 127.0.0.1:1');
    const silent = await doctor(['127.0.0.1', '--port', String(port(app, 'noray', 'control')), '--registrar-port', '9', '--timeout', '500ms']);
    expect(silent.code).toBe(1);
    expect(silent.out).toContain('UDP 127.0.0.1:9 (the registrar) gets no answer: open UDP 9 on the server');
  }, 30_000);

  it('a TCP port that is not noray: says register-host got nothing, exit 1', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const address = silent.address();
      const tcpPort = typeof address === 'object' && address !== null ? address.port : 0;
      const result = await doctor(['127.0.0.1', '--port', String(tcpPort), '--timeout', '300ms']);
      expect(result.code).toBe(1);
      expect(result.out).toContain(`TCP 127.0.0.1:${tcpPort} answers, but register-host failed: no set-oid within 300 ms (is it a noray control port?)`);
    } finally {
      silent.close();
    }
  });

  it('wrong arguments: exit 2 with the usage', async () => {
    const bad = await doctor(['--port', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--port');
    expect(bad.err).toContain('Usage: noray doctor');
  });

  it('the built bin runs it: `noray doctor --help` exits 0', async () => {
    const bin = join(import.meta.dirname, '..', '..', 'dist', 'bin', 'noray.js');
    const child = spawn(process.execPath, [bin, 'doctor', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(out).toContain('Exit codes: 0 no problem found');
  });
});
