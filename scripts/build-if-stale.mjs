#!/usr/bin/env node
// `npm start` runs this first (prestart): it builds dist/ when it is missing or older than the
// sources, so `npm ci && npm start` works on a fresh clone and after a `git pull`, and costs
// nothing when dist/ is current. With --check it only reports: exit 0 current, 1 stale.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = process.cwd();
const target = join(root, 'dist', 'bin', 'noray.js');
const inputs = [join(root, 'src'), join(root, 'package.json'), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json')];

/** Newest modification time of a file or of every file under a directory. */
function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

const built = existsSync(target) ? statSync(target).mtimeMs : 0;
// tsc rewrites every output file on each build, so the bin's time stands for all of dist/.
const stale = built === 0 || inputs.some((input) => newest(input) > built);

if (process.argv.includes('--check')) {
  process.stdout.write(stale ? 'dist/ is stale\n' : 'dist/ is current\n');
  process.exit(stale ? 1 : 0);
}
if (!stale) process.exit(0);

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (built > 0) {
    process.stderr.write('noray: dist/ is older than src/ but TypeScript is not installed; starting the old build\n');
    process.exit(0);
  }
  process.stderr.write(
    'noray: dist/ is missing and TypeScript is not installed (npm ci --omit=dev?).\n' +
      'Run "npm ci" (with dev dependencies) once, or install a packed build: see "Running in production" in README.md\n',
  );
  process.exit(1);
}
process.stdout.write('noray: building dist/ (tsc) ...\n');
// The server, then the dashboard page (browser code with its own tsconfig), as `npm run build` does.
let result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (result.status === 0) {
  result = spawnSync(process.execPath, [tsc, '-p', join('src', 'ops', 'dashboard', 'web', 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
}
// tsc writes the bin without an executable bit; `npx noray` and `./dist/bin/noray.js` need one.
if (result.status === 0) chmodSync(join(root, 'dist', 'bin', 'noray.js'), 0o755);
process.exit(result.status ?? 1);
