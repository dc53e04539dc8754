// The import direction of docs/architecture.md, checked on every test run: a codec imports nothing
// of ours, the core imports only the core, a front never imports another front nor ops, ops imports
// only the front contract, and only the composition root imports fronts. The client SDK
// (client/) shares only the fronts' pure wire modules (codecs and schemas) with the server.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Our own modules a file imports, as paths relative to src/. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)].map((m) => m[1] as string);
  return specifiers.map((specifier) => relative(SRC, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts'));
}

const all = files(SRC).map((file) => ({ path: relative(SRC, file), imports: localImports(file) }));
/** The front a path belongs to; `fronts/shared/` is plumbing every front may use, not a front. */
const frontOf = (path: string) => {
  const front = /^fronts\/([^/]+)\//.exec(path)?.[1];
  return front === 'shared' ? undefined : front;
};

describe('import direction', () => {
  it('finds the sources', () => {
    expect(all.length).toBeGreaterThan(30);
  });

  it.each(all.filter((f) => /(^|\/)codec\.ts$/.test(f.path)).map((f) => [f.path, f.imports]))(
    '%s imports nothing of ours',
    (_path, imports) => {
      expect(imports).toEqual([]);
    },
  );

  it.each(all.filter((f) => f.path.startsWith('core/')).map((f) => [f.path, f.imports]))(
    '%s imports only the core',
    (_path, imports) => {
      expect(imports.filter((target) => !target.startsWith('core/'))).toEqual([]);
    },
  );

  it.each(all.filter((f) => frontOf(f.path) !== undefined).map((f) => [f.path, f.imports]))(
    '%s imports no other front',
    (path, imports) => {
      const own = frontOf(path);
      const others = imports.filter((target) => {
        const front = frontOf(target);
        return front !== undefined && front !== own;
      });
      expect(others).toEqual([]);
    },
  );

  it.each(all.filter((f) => f.path.startsWith('fronts/shared/')).map((f) => [f.path, f.imports]))(
    '%s (shared front plumbing) imports no front',
    (_path, imports) => {
      expect(imports.filter((target) => frontOf(target) !== undefined)).toEqual([]);
    },
  );

  it.each(all.filter((f) => f.path.startsWith('fronts/')).map((f) => [f.path, f.imports]))(
    '%s imports nothing of ops',
    (_path, imports) => {
      expect(imports.filter((target) => target.startsWith('ops/'))).toEqual([]);
    },
  );

  it.each(all.filter((f) => f.path.startsWith('ops/')).map((f) => [f.path, f.imports]))(
    '%s (ops) imports no front, only the front contract and the shared plumbing',
    (_path, imports) => {
      expect(imports.filter((target) => frontOf(target) !== undefined)).toEqual([]);
    },
  );

  /** A front's pure description of its wire: its codec and its schemas, which import nothing of ours but zod. */
  const isWireModule = (path: string) => /^fronts\/[^/]+\/(codec|schemas)\.ts$/.test(path);

  it.each(all.filter((f) => f.path.startsWith('client/')).map((f) => [f.path, f.imports]))(
    '%s (client SDK) imports only the SDK and the fronts\' wire modules',
    (_path, imports) => {
      expect(imports.filter((target) => !target.startsWith('client/') && !isWireModule(target))).toEqual([]);
    },
  );

  it('the fronts\' schemas import nothing of ours (the client SDK ships them to browsers)', () => {
    const schemas = all.filter((f) => /^fronts\/[^/]+\/schemas\.ts$/.test(f.path));
    expect(schemas.length).toBeGreaterThan(0);
    for (const f of schemas) expect(f.imports).toEqual([]);
  });

  it('only the composition root imports fronts (and the client SDK their wire modules)', () => {
    const importers = all
      .filter((f) => !f.path.startsWith('fronts/') && !f.path.startsWith('client/') && f.imports.some((target) => frontOf(target) !== undefined))
      .map((f) => f.path);
    expect(importers).toEqual(['app.ts']);
  });
});
