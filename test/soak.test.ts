// A short run of the soak/chaos script (scripts/soak/run.ts) against the built server (dist/),
// and its SIGTERM-under-load mode. The long run is `npm run soak -- --duration 10m` (docs/soak.md).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number | null;
  output: string;
  result: { passed: boolean; mode: string; flows: Record<string, number>; errors: number; checks: Record<string, boolean> } | null;
}

/** Runs the soak script as a child process; kills its process group if it outlives limitMs. */
function soak(args: string[], limitMs: number): Promise<Run> {
  return new Promise((resolve) => {
    // Its own process group, so a kill reaches npx, tsx, the script and the server it spawned.
    const child = spawn('npx', ['tsx', 'scripts/soak/run.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const timer = setTimeout(() => {
      output += '\n[test] soak run over its time limit: killed\n';
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = output.split('\n').find((l) => l.startsWith('SOAK RESULT '));
      resolve({ code, output, result: line ? (JSON.parse(line.slice('SOAK RESULT '.length)) as Run['result']) : null });
    });
  });
}

describe('soak (short run)', () => {
  it('15 s of every front under churn and chaos: no errors, nothing left, handles back', async () => {
    const run = await soak(['--duration', '15s', '--clients', '4', '--chaos', '3'], 50_000);
    expect(run.result, run.output).not.toBeNull();
    expect(run.result?.errors, run.output).toBe(0);
    expect(run.result?.checks, run.output).toMatchObject({ leftovers: true, 'open handles': true, 'server error logs': true });
    for (const front of ['noray', 'lobby', 'wsrelay', 'tcprelay']) expect(run.result?.flows[front] ?? 0, front).toBeGreaterThan(0);
    expect(run.output).toContain('=== noray soak summary ===');
    expect(run.code, run.output).toBe(0);
  }, 60_000);

  it('SIGTERM under load: exit 0 within 5 s, clients told, every port free', async () => {
    const run = await soak(['--duration', '4s', '--clients', '3', '--chaos', '2', '--sigterm'], 30_000);
    expect(run.result?.checks, run.output).toMatchObject({
      'exit after SIGTERM': true,
      'WebSockets told': true,
      'TCP clients told': true,
      'ports free after exit': true,
    });
    expect(run.code, run.output).toBe(0);
  }, 40_000);
});
