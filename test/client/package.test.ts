// What ships: noray/client runs in browsers (its built import graph reaches no Node built-in and
// no package but zod), both subpaths resolve by the package name with their type declarations.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** Every module `entry` reaches in dist/: our files, and the bare specifiers (packages, built-ins) they import. */
function importGraph(entry: string): { files: string[]; external: string[] } {
  const files = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
      (match) => (match[1] ?? match[2] ?? match[3]) as string,
    );
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else external.add(specifier);
    }
  };
  visit(join(ROOT, 'dist', entry));
  return { files: [...files], external: [...external].sort() };
}

const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0] as string);

describe('noray/client in browsers', () => {
  it('the import graph finds Node built-ins where they are (the check can fail)', () => {
    const node = importGraph('client/node.js');
    expect(node.external.filter(isBuiltin)).toEqual(expect.arrayContaining(['node:dgram', 'node:net']));
  });

  it('dist/client/index.js reaches no Node built-in and no package but zod', () => {
    const browser = importGraph('client/index.js');
    expect(browser.files.length).toBeGreaterThan(4);
    expect(browser.external).toEqual(['zod']);
  });

  it('no module it reaches uses the Node-only Buffer or process globals', () => {
    for (const file of importGraph('client/index.js').files) {
      const code = readFileSync(file, 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
      expect({ file, buffer: /\bBuffer\b/.test(code), process: /\bprocess\./.test(code) }).toEqual({ file, buffer: false, process: false });
    }
  });
});

describe('package exports', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | { types: string; default: string }> };

  it.each(['./client', './client/node'])('%s has a built module and its type declarations', (subpath) => {
    const entry = pkg.exports[subpath];
    expect(typeof entry).toBe('object');
    const { types, default: module } = entry as { types: string; default: string };
    expect(existsSync(join(ROOT, module))).toBe(true);
    expect(readFileSync(join(ROOT, types), 'utf8')).toMatch(/export /);
  });

  it('noray/client and noray/client/node import by the package name', async () => {
    const script = [
      "const browser = await import('noray/client');",
      "const node = await import('noray/client/node');",
      "console.log(JSON.stringify([typeof browser.LobbyClient, typeof browser.GameServer, typeof browser.NorayClient, typeof node.NorayClient, typeof node.TcpRelayClient]));",
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    expect(JSON.parse(stdout)).toEqual(['function', 'function', 'undefined', 'function', 'function']);
  });
});
