// The production install: the package `npm pack` makes, installed with `npm install -g` the way
// README's "Running in production" says, and started from the installed `noray` command.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv, QUIET_PORTS, Run } from './helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
  scripts: Record<string, string>;
};
const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Enough of npm's range syntax for engines fields: `*`, `>=20`, `>= 10.x`, `^20.19.0 || >=22.12.0`. */
function admits(range: string, version: string): boolean {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number) as [number, number, number];
  const compare = (v: number[]) => major - (v[0] ?? 0) || minor - (v[1] ?? 0) || patch - (v[2] ?? 0);
  if (range.trim() === '*' || range.trim() === '') return true;
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/([<>=^~]+)\s+/g, '$1')
      .split(/\s+/)
      .every((comparator) => {
        const match = /^(>=|>|<=|<|\^|~|=)?v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?$/.exec(comparator);
        if (!match) throw new Error(`cannot read engines range ${JSON.stringify(range)}`);
        const wanted = [match[2], match[3], match[4]].map((part) => (part === undefined || part === 'x' ? 0 : Number(part)));
        const c = compare(wanted);
        switch (match[1]) {
          case '>=':
            return c >= 0;
          case '>':
            return c > 0;
          case '<=':
            return c <= 0;
          case '<':
            return c < 0;
          case '^':
            return c >= 0 && major === wanted[0];
          case '~':
            return c >= 0 && major === wanted[0] && minor === wanted[1];
          default:
            return match[3] === undefined ? major === wanted[0] : c === 0;
        }
      }),
  );
}

describe('dependencies', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean; engines?: { node?: string } | string[] }>;
  };
  const minimum = PKG.engines.node.replace(/^>=\s*/, '');
  const withEngines = Object.entries(lock.packages).flatMap(([path, entry]) => {
    const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
    return node === undefined || path === '' ? [] : [{ path, node, dev: entry.dev === true }];
  });

  it('reads engine ranges the way npm does', () => {
    expect(admits('>=20.12', '20.12.0')).toBe(true);
    expect(admits('>=20.12', '20.11.9')).toBe(false);
    expect(admits('>=22', 'v20.20.2')).toBe(false);
    expect(admits('^20.19.0 || >=22.12.0', '20.20.2')).toBe(true);
    expect(admits('^20.19.0 || >=22.12.0', '21.0.0')).toBe(false);
    expect(admits('>= 10.x', '20.0.0')).toBe(true);
    expect(admits('^10 || ^12 || ^13.7 || ^14 || >=15.0.1', '20.12.0')).toBe(true);
  });

  it(`every runtime dependency runs on the oldest Node.js noray supports (${minimum})`, () => {
    // A runtime dependency that wants a newer Node would break the server there, and npm prints
    // EBADENGINE on every install (it did for cookie@2, pulled in by fastify's light-my-request).
    const refusing = withEngines.filter((entry) => !entry.dev && !admits(entry.node, minimum));
    expect(refusing).toEqual([]);
  });

  it(`npm ci prints no EBADENGINE warning on this Node.js (${process.version})`, () => {
    const refusing = withEngines.filter((entry) => !admits(entry.node, process.version));
    expect(refusing).toEqual([]);
  });
});

describe('package scripts', () => {
  it('installing needs no dev dependency: only the optional native relay engine builds on install (npm ci --omit=dev has no tsc)', () => {
    for (const hook of ['prepare', 'preinstall', 'postinstall']) expect(PKG.scripts[hook]).toBeUndefined();
    // node-gyp comes with npm and node-addon-api is a runtime dependency; the script never fails the install.
    expect(PKG.scripts.install).toBe('node scripts/build-native.mjs');
  });

  it('npm pack builds, npm start builds when dist/ is stale, npm test builds', () => {
    expect(PKG.scripts.prepack).toBe('npm run build');
    expect(PKG.scripts.prestart).toBe('node scripts/build-if-stale.mjs');
    expect(PKG.scripts.test).toContain('npm run build');
  });

  describe('the prestart check', () => {
    let dir: string;
    const check = (cwd: string) =>
      run(process.execPath, [join(ROOT, 'scripts', 'build-if-stale.mjs'), '--check'], { cwd }).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (failure: { code: number; stdout: string }) => ({ code: failure.code, stdout: failure.stdout }),
      );
    const touch = (path: string, secondsAgo: number) => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, '');
      const time = new Date(Date.now() - secondsAgo * 1000);
      utimesSync(path, time, time);
    };

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'noray-stale-'));
      touch(join(dir, 'package.json'), 100);
      touch(join(dir, 'src', 'bin', 'noray.ts'), 100);
    });

    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('a missing dist/ is stale', async () => {
      expect(await check(dir)).toEqual({ code: 1, stdout: 'dist/ is stale\n' });
    });

    it('a dist/ built after every source is current', async () => {
      touch(join(dir, 'dist', 'bin', 'noray.js'), 10);
      expect(await check(dir)).toEqual({ code: 0, stdout: 'dist/ is current\n' });
    });

    it('a source changed after the build makes it stale', async () => {
      touch(join(dir, 'dist', 'bin', 'noray.js'), 10);
      touch(join(dir, 'src', 'core', 'new.ts'), 1);
      expect(await check(dir)).toEqual({ code: 1, stdout: 'dist/ is stale\n' });
    });
  });
});

describe('npm pack, npm install -g, noray', () => {
  let dir: string;
  let tarball: string;
  let prefix: string;
  let installOutput = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'noray-pack-'));
    prefix = join(dir, 'prefix');
    // dist/ is already built by `npm test`; --ignore-scripts keeps prepack from rebuilding it
    // under other test files that are running it.
    const packed = await run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: ROOT,
      env: cleanEnv(),
    });
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    if (!info) throw new Error(`npm pack printed no package: ${packed.stdout}`);
    tarball = join(dir, info.filename);
    const installed = await run(
      NPM,
      ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
      { cwd: dir, env: cleanEnv(), timeout: 170_000 },
    );
    installOutput = installed.stdout + installed.stderr;
  }, 180_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the package holds the build, the license and the README, not the sources', async () => {
    const { stdout } = await run('tar', ['tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    expect(files).toContain('package/dist/bin/noray.js');
    expect(files).toContain('package/LICENSE');
    expect(files).toContain('package/README.md');
    expect(files.filter((file) => file.startsWith('package/src/') || file.startsWith('package/test/'))).toEqual([]);
    // The native relay engine's sources, which the install script builds where a compiler is.
    expect(files).toContain('package/scripts/build-native.mjs');
    expect(files).toContain('package/native/relay-engine/src/engine.cc');
    expect(files.filter((file) => file.includes('/build/'))).toEqual([]);
    expect(installOutput).toContain('added');
  });

  it('the installed noray starts on free ports, serves /health and the dashboard, and stops on SIGTERM', async () => {
    const bin = join(prefix, process.platform === 'win32' ? 'noray.cmd' : join('bin', 'noray'));
    const version = await run(bin, ['--version'], { cwd: dir, env: cleanEnv() });
    expect(version.stdout).toBe(`${PKG.version}\n`);

    const server = new Run(bin, [], { cwd: dir, env: cleanEnv(QUIET_PORTS) });
    try {
      const ready = await server.waitForLog('noray ready');
      const ports = ready.ports as Record<string, Record<string, number>>;
      const health = await fetch(`http://127.0.0.1:${ports.ops?.http}/health`);
      expect(health.status).toBe(200);
      // The dashboard page's script and chart come from the package itself (dist/web, the uplot dependency).
      for (const asset of ['/', '/dashboard/app.js', '/dashboard/uPlot.iife.min.js']) {
        expect([asset, (await fetch(`http://127.0.0.1:${ports.ops?.http}${asset}`)).status]).toEqual([asset, 200]);
      }
      server.child.kill('SIGTERM');
      expect(await server.exit()).toEqual({ code: 0, signal: null });
      expect(server.logs.at(-1)?.msg).toBe('noray stopped');
    } finally {
      if (server.running) server.child.kill('SIGKILL');
    }
  }, 60_000);
});
