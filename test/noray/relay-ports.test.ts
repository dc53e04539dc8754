// Relay ports bound before ready: none bound or fewer than NORAY_UDP_RELAY_MIN_PORTS stops the
// start with one clear message; a partial range is logged once and shown in /health.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { relayPortBudget } from '../../src/core/open-files.js';
import { relayBindingOutcome } from '../../src/fronts/noray/relay-ports.js';
import { port, startApp } from '../helpers/app.js';
import { describeEachEngine, type RelayEngineKind } from '../helpers/relay-engines.js';
import { cleanEnv, QUIET_PORTS, Run } from '../helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');

const held: UdpSocket[] = [];
const runs: Run[] = [];
afterEach(async () => {
  for (const socket of held.splice(0)) socket.close();
  for (const run of runs.splice(0)) {
    if (run.running) {
      run.child.kill('SIGKILL');
      await run.exited.catch(() => undefined);
    }
  }
});

/** A UDP port on loopback held by another socket for the rest of the test. */
async function takenPort(): Promise<number> {
  const socket = createSocket('udp4');
  held.push(socket);
  await new Promise<void>((done) => socket.bind(0, '127.0.0.1', () => done()));
  return socket.address().port;
}

function capture() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describeEachEngine('relay ports at start', (engine: RelayEngineKind) => {
  function startNoray(overrides: Partial<Config>, logger = pino({ level: 'silent' })) {
    return startApp({ udpRelayEngine: engine, httpPort: 0, socketPort: 0, udpRegistrarPort: 0, ...overrides }, { logger });
  }

  it('refuses to start when no relay port can be bound, naming the ports and what to do', async () => {
    const taken = await takenPort();
    await expect(startNoray({ udpRelayPorts: [taken] })).rejects.toThrow(
      new RegExp(
        `^no relay port could be bound \\(NORAY_UDP_RELAY_PORTS: ${taken}\\): 1 could not be bound \\(bind EADDRINUSE 127\\.0\\.0\\.1:${taken}\\)\\. ` +
          'To start, free the ports that are taken or choose another NORAY_UDP_RELAY_PORTS range, or set NORAY_UDP_RELAY_PORTS=off',
      ),
    );
  });

  it('refuses to start with fewer than NORAY_UDP_RELAY_MIN_PORTS bound', async () => {
    const taken = await takenPort();
    await expect(startNoray({ udpRelayPorts: [taken, 0, 0], udpRelayMinPorts: 3 })).rejects.toThrow(
      /^only 2 of 3 relay ports could be bound, fewer than NORAY_UDP_RELAY_MIN_PORTS=3: 1 could not be bound \(bind EADDRINUSE .*\)\. To start, .*or lower NORAY_UDP_RELAY_MIN_PORTS$/,
    );
  });

  it('starts with part of the range, says so once, and shows bound/configured in /health', async () => {
    const taken = await takenPort();
    const { logger, lines } = capture();
    const app = await startNoray({ udpRelayPorts: [taken, 0], udpRelayMinPorts: 1 }, logger);
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings.map((line) => line.msg)).toEqual([
      `bound 1 of 2 relay ports: 1 could not be bound (bind EADDRINUSE 127.0.0.1:${taken}). ` +
        'To relay for more players, free the ports that are taken or choose another NORAY_UDP_RELAY_PORTS range',
    ]);
    expect(warnings[0]).toMatchObject({ relayPorts: { bound: 1, configured: 2, minimum: 1 } });
    const health = (await (await fetch(`http://127.0.0.1:${port(app, 'ops', 'http')}/health`)).json()) as {
      status: string;
      fronts: Record<string, { stats: Record<string, number>; ports: Record<string, unknown> }>;
    };
    expect(health.status).toBe('ok');
    expect(health.fronts.noray?.stats).toMatchObject({ relayPortsBound: 1, relayPortsConfigured: 2, relayPortsFree: 1 });
    expect(health.fronts.noray?.ports.relay).toHaveLength(1);
  });

  it('says nothing when every port is bound', async () => {
    const { logger, lines } = capture();
    const app = await startNoray({ udpRelayPorts: [0, 0, 0] }, logger);
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    expect(lines.find((line) => line.msg === 'relay ports bound')).toMatchObject({ relayPorts: 3, configured: 3 });
    expect(app.front('noray')?.stats()).toMatchObject({ relayPortsBound: 3, relayPortsConfigured: 3 });
  });

  it('the bin exits 1 with the message, before reporting ready, when the whole range is taken', async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first (npm test does)`);
    const first = await takenPort();
    const second = await takenPort();
    const run = new Run(process.execPath, [BIN], {
      cwd: ROOT,
      env: cleanEnv({ ...QUIET_PORTS, NORAY_UDP_RELAY_ENGINE: engine, NORAY_UDP_RELAY_PORTS: `${first},${second}` }),
    });
    runs.push(run);
    expect((await run.exit()).code).toBe(1);
    const fatal = run.logs.find((line) => line.msg === 'could not start');
    // The port list is parsed into ascending order.
    const listed = [first, second].sort((a, b) => a - b).join(', ');
    expect(JSON.stringify(fatal)).toContain(`no relay port could be bound (NORAY_UDP_RELAY_PORTS: ${listed})`);
    expect(run.stdout).not.toContain('noray ready');
  }, 30_000);
});

describe('relayBindingOutcome', () => {
  const ports = Array.from({ length: 2049 }, (_, i) => 49152 + i);

  it('budget cut: the limit, the reserve, the limit to set and the range to narrow', () => {
    const outcome = relayBindingOutcome({ configuredPorts: ports, budget: relayPortBudget(2049, 1024), bound: 768, failures: [], minPorts: 1 });
    expect(outcome).toMatchObject({
      kind: 'partial',
      message:
        'bound 768 of 2049 relay ports: the open-file limit (ulimit -n 1024) leaves room for 768 of them, keeping 256 descriptors for connections. ' +
        'To relay for more players, raise the open-file limit (ulimit -n 4096, LimitNOFILE=4096 in systemd) or narrow NORAY_UDP_RELAY_PORTS',
    });
  });

  it('descriptors ran out while binding: one reason, however many ports failed with EMFILE', () => {
    const failures = Array.from({ length: 100 }, (_, i) => ({ port: 49500 + i, error: `bind EMFILE 0.0.0.0:${49500 + i}`, code: 'EMFILE' }));
    const outcome = relayBindingOutcome({ configuredPorts: ports, budget: relayPortBudget(2049, null), bound: 200, failures, minPorts: 1 });
    expect(outcome.kind).toBe('partial');
    const message = outcome.kind === 'complete' ? '' : outcome.message;
    expect(message).toMatch(/^bound 200 of 2049 relay ports: the process ran out of file descriptors \(EMFILE\) at port 49500; /);
    expect(message).toContain('ulimit -n 4096');
    expect(message).not.toContain('could not be bound');
  });

  it('a limit that leaves room for fewer than the minimum stops the start, saying which limit', () => {
    const outcome = relayBindingOutcome({ configuredPorts: ports, budget: relayPortBudget(2049, 1024), bound: 768, failures: [], minPorts: 1000 });
    expect(outcome.kind).toBe('fatal');
    expect(outcome.kind === 'complete' ? '' : outcome.message).toBe(
      'only 768 of 2049 relay ports could be bound, fewer than NORAY_UDP_RELAY_MIN_PORTS=1000: the open-file limit (ulimit -n 1024) leaves room for 768 of them, ' +
        'keeping 256 descriptors for connections. To start, raise the open-file limit (ulimit -n 4096, LimitNOFILE=4096 in systemd) or narrow NORAY_UDP_RELAY_PORTS, ' +
        'or lower NORAY_UDP_RELAY_MIN_PORTS',
    );
  });
});
