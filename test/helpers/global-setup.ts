// Tests that spawn dist/ (the CLI, the soak, the package and NAT lab tests) must never test a
// stale build: build it first when it is missing or older than the sources (cheap when current).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export default function setup(): void {
  const root = resolve(import.meta.dirname, '../..');
  const result = spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('building dist/ for the tests failed');
}
