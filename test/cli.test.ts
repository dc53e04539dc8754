// The real entry point, spawned as users run it. `npm test` builds dist/ before vitest runs.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { flagName, type OptionSpec } from '../src/config/option.js';
import { OPTIONS } from '../src/config/schema.js';
import { cleanEnv, QUIET_PORTS, Run, WAIT_MS, withTimeout, type LogLine } from './helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const runs: Run[] = [];
let cwd: string;

function noray(args: string[], env: Record<string, string> = {}, options: { cwd?: string } = {}): Run {
  const run = new Run(process.execPath, [BIN, ...args], { cwd: options.cwd ?? cwd, env: cleanEnv(env) });
  runs.push(run);
  return run;
}

/** Sends one line on the control channel and resolves with the first line of the answer. */
function echo(port: number, text: string): Promise<string> {
  return new Promise((resolveLine, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`echo ${text}\n`));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end >= 0) {
        socket.destroy();
        resolveLine(received.slice(0, end));
      }
    });
    socket.on('error', reject);
  });
}

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first (npm test does)`);
});

beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'noray-cli-'));
});

afterEach(async () => {
  for (const run of runs.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGKILL');
      await run.exited.catch(() => undefined);
    }
  }
  rmSync(cwd, { recursive: true, force: true });
});

describe('noray --help and --version', () => {
  it('--help lists every option with its flag, env name and default, and exits 0', async () => {
    const run = noray(['--help']);
    expect(await run.exit()).toEqual({ code: 0, signal: null });
    expect(run.stdout).toMatch(/^Usage: noray/);
    for (const option of Object.values(OPTIONS) as OptionSpec<unknown>[]) {
      expect(run.stdout).toContain(`--${flagName(option)}`);
      expect(run.stdout).toContain(`env ${option.env}, default ${JSON.stringify(option.default)}`);
    }
    expect(run.stderr).toBe('');
  });

  it('--help groups the options by front under headings and shows a value placeholder for each', async () => {
    const run = noray(['--help']);
    expect((await run.exit()).code).toBe(0);
    const headings = run.stdout.split('\n').filter((line) => /^\S.*:$/.test(line) && !line.startsWith('Usage'));
    expect(headings).toEqual([
      'Values:',
      'General and the operations server (/health, /metrics):',
      'noray front: NAT punchthrough and UDP relay:',
      'lobby front: Orion-compatible lobbies and peer-to-peer mediation:',
      'wsrelay front: CarParty-compatible WebSocket relay:',
      'tcprelay front: Rocco-compatible TCP relay:',
      'Limits, shared by every front:',
    ]);
    const section = (title: string) => {
      const start = run.stdout.indexOf(`\n${title}`);
      const end = run.stdout.indexOf('\n\n', start + 1);
      return run.stdout.slice(start, end === -1 ? undefined : end);
    };
    expect(section('noray front')).toContain('  --socket-port PORT\n');
    expect(section('noray front')).toContain('  --udp-relay-timeout DURATION\n');
    expect(section('noray front')).toContain('  --udp-relay-ports PORTS\n');
    expect(section('noray front')).toContain('  --oid-length N\n');
    expect(section('noray front')).not.toContain('--wsrelay-port');
    expect(section('lobby front')).toContain('  --lobby-http-port PORT (also --httpPort)\n');
    expect(section('wsrelay front')).toContain('  --wsrelay-max-message-size SIZE\n');
    expect(section('tcprelay front')).toContain('  --tcprelay-port PORT\n');
    expect(section('Limits')).toContain('  --deny-private-peers BOOL\n');
    expect(section('General')).toContain('  --loglevel LEVEL\n');
    // Every option line has a placeholder.
    const optionLines = run.stdout.split('\n').filter((line) => /^  --[a-z]/.test(line));
    expect(optionLines.length).toBe(Object.keys(OPTIONS).length);
    for (const line of optionLines) expect(line).toMatch(/^  --[a-z-]+ [A-Z]+( \(also .*\))?$/);
  });

  it('-h is --help', async () => {
    const run = noray(['-h']);
    expect((await run.exit()).code).toBe(0);
    expect(run.stdout).toContain('--socket-port');
  });

  it('--version prints the package version and exits 0', async () => {
    const run = noray(['--version']);
    expect(await run.exit()).toEqual({ code: 0, signal: null });
    expect(run.stdout).toBe(`${PKG.version}\n`);
  });
});

describe('invalid configuration', () => {
  it('an invalid env value exits 2 with a message naming the variable and the value', async () => {
    const run = noray([], { ...QUIET_PORTS, NORAY_SOCKET_PORT: 'abc' });
    const { code } = await run.exit();
    expect(code).toBe(2);
    expect(run.stderr).toContain('NORAY_SOCKET_PORT');
    expect(run.stderr).toContain('abc');
    expect(run.stdout).not.toContain('noray ready');
  });

  it('an invalid flag value exits 2 naming the variable, the flag and the value', async () => {
    const run = noray(['--udp-relay-ports', '51200-49152'], QUIET_PORTS);
    expect((await run.exit()).code).toBe(2);
    expect(run.stderr).toMatch(/51200-49152.*NORAY_UDP_RELAY_PORTS.*--udp-relay-ports/);
  });

  it.each([
    ['--udp-relay-timeout', '-5', 'a duration cannot be negative'],
    ['--udp-relay-max-global-traffic', '-1gb', 'a byte size cannot be negative'],
    ['--socket-port', '-1', 'is not a port number'],
    ['--max-connections', '-10', 'expected an integer from 1'],
  ])('a negative value (%s %s) exits 2 naming the flag and the value, not a parser puzzle', async (flag, value, reason) => {
    const run = noray([flag, value], QUIET_PORTS);
    expect((await run.exit()).code).toBe(2);
    expect(run.stderr).toContain(`invalid value "${value}"`);
    expect(run.stderr).toContain(flag);
    expect(run.stderr).toContain(reason);
    expect(run.stderr).not.toContain('ambiguous');
  });

  it('a flag without its value exits 2 saying so, with an example', async () => {
    const run = noray(['--udp-relay-timeout', '--socket-port', '0'], QUIET_PORTS);
    expect((await run.exit()).code).toBe(2);
    expect(run.stderr).toContain('--udp-relay-timeout needs a value (e.g. --udp-relay-timeout 30s)');
  });

  it('every front and the ops server off: refuses to start with exit 2 instead of exiting "ready"', async () => {
    const run = noray([], { ...QUIET_PORTS, NORAY_SOCKET_PORT: 'off', NORAY_HTTP_PORT: 'off' });
    expect((await run.exit()).code).toBe(2);
    expect(run.stderr).toContain('nothing to run');
    expect(run.stderr).toContain('NORAY_SOCKET_PORT');
    expect(run.stdout).not.toContain('noray ready');
  });

  it('the ops server alone is something to run', async () => {
    const run = noray([], { ...QUIET_PORTS, NORAY_SOCKET_PORT: 'off' });
    const ready = await run.waitForLog('noray ready');
    expect(Object.keys(ready.ports as object)).toEqual(['ops']);
    run.child.kill('SIGTERM');
    expect((await run.exit()).code).toBe(0);
  });

  it('an unknown flag exits non-zero with a message', async () => {
    const run = noray(['--no-such-flag', '1'], QUIET_PORTS);
    const { code } = await run.exit();
    expect(code).not.toBe(0);
    expect(code).toBe(2);
    expect(run.stderr).toContain('--no-such-flag');
    expect(run.stderr).toContain('--help');
  });

  it('a missing --dotenv file exits non-zero naming the file', async () => {
    const run = noray(['--dotenv', 'nope.env'], QUIET_PORTS);
    // Not named --env-file: Node 20 takes a script argument of that name for itself (nodejs/node#54232).
    const { code } = await run.exit();
    expect(code).toBe(2);
    expect(run.stderr).toContain('nope.env');
    expect(run.stdout).not.toContain('noray ready');
  });
});

describe('running', () => {
  async function startAndStop(signal: NodeJS.Signals, run: Run): Promise<LogLine> {
    const ready = await run.waitForLog('noray ready');
    run.child.kill(signal);
    const started = Date.now();
    expect(await run.exit()).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(run.logs.find((line) => line.msg === 'shutting down')).toMatchObject({ signal });
    expect(run.logs.at(-1)?.msg).toBe('noray stopped');
    return ready;
  }

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'starts on ephemeral ports, reports them, serves, and stops with exit 0 on %s',
    async (signal) => {
      const run = noray([], QUIET_PORTS);
      const config = await run.waitForLog('effective config');
      expect(config.config).toMatchObject({
        socketHost: '127.0.0.1',
        socketPort: 0,
        httpPort: 0,
        udpRegistrarPort: 0,
        udpRelayPorts: null,
        lobbyHttpPort: null,
        wsrelayPort: null,
        tcprelayPort: null,
        oidLength: 21,
        udpRelayTimeout: 30_000,
      });

      const ready = await run.waitForLog('noray ready');
      const ports = ready.ports as Record<string, Record<string, number>>;
      const control = ports.noray?.control;
      const registrar = ports.noray?.registrar;
      const http = ports.ops?.http;
      for (const port of [control, registrar, http]) {
        expect(port).toBeGreaterThan(0);
        expect(port).toBeLessThan(65536);
      }
      expect(ports.noray?.relay).toBeUndefined();
      expect(Object.keys(ports).sort()).toEqual(['noray', 'ops']);

      // The reported ports are the live ones.
      expect(await echo(control as number, 'hello cli')).toBe('echo hello cli');
      const health = await fetch(`http://127.0.0.1:${http}/health`);
      expect(health.status).toBe(200);

      // An idle game connection (clients keep it open all game) must not hold up the stop.
      const idle = connect({ host: '127.0.0.1', port: control as number });
      const idleClosed = new Promise<void>((resolveClosed) => idle.on('close', () => resolveClosed()));
      idle.on('error', () => undefined);
      await new Promise<void>((resolveConnected) => idle.on('connect', () => resolveConnected()));

      await startAndStop(signal, run);
      await withTimeout(idleClosed, WAIT_MS, 'the idle connection to close');
      expect(run.stderr).toBe('');
    },
    60_000,
  );

  it('a port already in use exits 1 with a fatal log line, releasing what it bound', async () => {
    const blocker = createServer();
    await new Promise<void>((resolveListening) => blocker.listen(0, '127.0.0.1', resolveListening));
    try {
      const taken = (blocker.address() as AddressInfo).port;
      const run = noray([], { ...QUIET_PORTS, NORAY_SOCKET_PORT: String(taken) });
      expect((await run.exit()).code).toBe(1);
      const fatal = run.logs.find((line) => line.msg === 'could not start');
      expect(JSON.stringify(fatal)).toContain('EADDRINUSE');
      expect(run.stdout).not.toContain('noray ready');
    } finally {
      await new Promise((resolveClosed) => blocker.close(resolveClosed));
    }
  }, 60_000);

  it('honours a .env file in the working directory; the environment beats it', async () => {
    const dotenv = Object.entries({ ...QUIET_PORTS, NORAY_OID_LENGTH: '12', NORAY_PID_LENGTH: '40' })
      .map(([key, value]) => `${key}=${value}`)
      .join('\n');
    writeFileSync(join(cwd, '.env'), `# test\n${dotenv}\n`);
    const run = noray([], { NORAY_PID_LENGTH: '50' });
    const config = await run.waitForLog('effective config');
    expect(config.config).toMatchObject({ socketPort: 0, udpRelayPorts: null, oidLength: 12, pidLength: 50 });
    await startAndStop('SIGTERM', run);
  }, 60_000);

  it('an invalid value in .env is reported as from .env', async () => {
    writeFileSync(join(cwd, '.env'), 'NORAY_UDP_RELAY_TIMEOUT=soon\n');
    const run = noray([], QUIET_PORTS);
    expect((await run.exit()).code).toBe(2);
    expect(run.stderr).toMatch(/"soon".*NORAY_UDP_RELAY_TIMEOUT.*\.env/);
  });

  it('--dotenv reads the named file instead of ./.env; flags beat it', async () => {
    writeFileSync(join(cwd, '.env'), 'NORAY_SOCKET_PORT=not-read\n');
    mkdirSync(join(cwd, 'conf'));
    const file = Object.entries({ ...QUIET_PORTS, NORAY_OID_LENGTH: '9', NORAY_LOGLEVEL: 'info' })
      .map(([key, value]) => `${key}=${value}`)
      .join('\n');
    writeFileSync(join(cwd, 'conf', 'test.env'), file);
    const run = noray(['--dotenv', 'conf/test.env', '--oid-length', '10']);
    const config = await run.waitForLog('effective config');
    expect(config.config).toMatchObject({ socketPort: 0, oidLength: 10 });
    await startAndStop('SIGINT', run);
  }, 60_000);
});

describe('signals through a wrapper (npm start, npx noray)', () => {
  /** The health port stops answering once the server is gone. */
  async function healthGone(port: number): Promise<boolean> {
    return fetch(`http://127.0.0.1:${port}/health`).then(
      () => false,
      () => true,
    );
  }

  it('SIGTERM to npx stops the server instead of leaving it running as an orphan', async () => {
    writeFileSync(join(cwd, 'empty.env'), '');
    const run = new Run('npx', ['--no-install', 'noray', '--dotenv', join(cwd, 'empty.env')], {
      cwd: ROOT,
      env: cleanEnv(QUIET_PORTS),
    });
    runs.push(run);
    const ready = await run.waitForLog('noray ready', 60_000);
    const http = (ready.ports as Record<string, Record<string, number>>).ops?.http as number;
    run.child.kill('SIGTERM');
    // stdout closes only when the last process holding it, the server, has exited.
    await withTimeout(run.exited, WAIT_MS, 'the server behind npx to exit');
    expect(run.logs.find((line) => line.msg === 'shutting down')).toBeDefined();
    expect(run.logs.at(-1)?.msg).toBe('noray stopped');
    expect(await healthGone(http)).toBe(true);
  }, 90_000);

  it('started by npm, the server stops when its parent dies, whatever killed it', async () => {
    // `; true` keeps any sh from exec-ing node: the shell stays in between, as under npm.
    const run = new Run('sh', ['-c', `"${process.execPath}" "${BIN}"; true`], {
      cwd,
      env: cleanEnv({ ...QUIET_PORTS, npm_lifecycle_event: 'start' }),
    });
    runs.push(run);
    await run.waitForLog('noray ready');
    run.child.kill('SIGKILL');
    await withTimeout(run.exited, WAIT_MS, 'the orphaned server to exit');
    expect(run.logs.find((line) => line.msg === 'shutting down')).toMatchObject({ reason: 'parent exited' });
    expect(run.logs.at(-1)?.msg).toBe('noray stopped');
  }, 60_000);

  it('run directly, the bin does not watch its parent (a daemonizing shell may leave)', async () => {
    const run = new Run('sh', ['-c', `"${process.execPath}" "${BIN}" & echo "server $!"`], { cwd, env: cleanEnv(QUIET_PORTS) });
    // The shell exits at once; the server lives on until told to stop.
    const ready = await run.waitForLog('noray ready');
    const pid = Number(/^server (\d+)$/m.exec(run.stdout)?.[1]);
    try {
      await new Promise((resolveWait) => setTimeout(resolveWait, 2500));
      expect(run.logs.find((line) => line.msg === 'shutting down')).toBeUndefined();
      const http = (ready.ports as Record<string, Record<string, number>>).ops?.http as number;
      expect((await fetch(`http://127.0.0.1:${http}/health`)).status).toBe(200);
      process.kill(pid, 'SIGTERM');
      await withTimeout(run.exited, WAIT_MS, 'the server to exit');
      expect(run.logs.find((line) => line.msg === 'shutting down')).toMatchObject({ signal: 'SIGTERM' });
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 60_000);

  it('SIGHUP (the terminal closed) stops gracefully too', async () => {
    const run = noray([], QUIET_PORTS);
    await run.waitForLog('noray ready');
    run.child.kill('SIGHUP');
    expect(await run.exit()).toEqual({ code: 0, signal: null });
    expect(run.logs.find((line) => line.msg === 'shutting down')).toMatchObject({ signal: 'SIGHUP' });
  });
});

describe('npx noray', () => {
  it('runs the package bin from the repository root', async () => {
    const run = new Run('npx', ['--no-install', 'noray', '--help'], { cwd: ROOT, env: cleanEnv() });
    runs.push(run);
    const { code } = await withTimeout(run.exited, 60_000, 'npx noray --help');
    expect(code, run.stderr).toBe(0);
    expect(run.stdout).toContain('Usage: noray');
    expect(run.stdout).toContain('NORAY_SOCKET_PORT');
  }, 90_000);

  it('the bin starts with a node shebang and the build made it executable', () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    // npx runs it through sh; tsc alone writes it 0644 and a fresh clone gets "Permission denied"
    expect(statSync(BIN).mode & 0o111).toBe(0o111);
  });
});

afterAll(() => {
  for (const run of runs) run.child.kill('SIGKILL');
});
