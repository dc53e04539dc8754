// A STUN client we did not write: coturn's `turnutils_stunclient` (Debian package coturn).
// Missing, the tests that use it skip with a message, except on CI, where they fail (.ci/run
// installs it).
import { spawn, spawnSync } from 'node:child_process';

export const onCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Why the third-party STUN client cannot run here, or null when it is on PATH. */
export function stunClientMissing(): string | null {
  const probe = spawnSync('turnutils_stunclient', [], { encoding: 'utf8', timeout: 5000 });
  return (probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
    ? 'turnutils_stunclient is not on PATH (apt-get install coturn)'
    : null;
}

/**
 * `turnutils_stunclient -p PORT HOST`: the reflexive (mapped) address it printed, or null when it
 * got no answer within timeoutMs (it waits forever on its own).
 */
export function thirdPartyStun(host: string, port: number, timeoutMs = 5000, prefix: readonly string[] = []): Promise<string | null> {
  return new Promise((resolve) => {
    const argv = [...prefix, 'turnutils_stunclient', '-p', String(port), host];
    const child = spawn(argv[0] ?? 'turnutils_stunclient', argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(/UDP reflexive addr: (\S+)/.exec(out)?.[1] ?? null);
    });
  });
}
