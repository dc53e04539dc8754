// The relay port pool where descriptors run out, in a child process with a low open-file limit.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const POOL = pathToFileURL(join(ROOT, 'dist', 'core', 'relay', 'port-pool.js')).href;

/** Binds 2049 relay sockets under `ulimit -n 400`, then checks the process can still listen and connect. */
const SCRIPT = `
import { PortPool } from ${JSON.stringify(POOL)};
import { createServer, connect } from 'node:net';
import { readdirSync } from 'node:fs';
const pool = new PortPool({
  host: '127.0.0.1', ports: Array.from({ length: 2049 }, () => 0), socketBufferBytes: 65536,
  onDatagram() {}, onSocketError() {},
});
await pool.bind();
const afterBind = readdirSync('/proc/self/fd').length;
const server = createServer((socket) => socket.on('error', () => {}));
await new Promise((done, fail) => { server.once('error', fail); server.listen(0, '127.0.0.1', done); });
const port = server.address().port;
const clients = await Promise.all(Array.from({ length: 50 }, () => new Promise((done, fail) => {
  const socket = connect(port, '127.0.0.1', () => done(socket));
  socket.once('error', fail);
})));
for (const socket of clients) socket.destroy();
server.close();
const codes = [...new Set(pool.failures.map((f) => f.code))];
process.stdout.write(JSON.stringify({ size: pool.size, free: pool.freeCount, failures: pool.failures.length, codes, afterBind }));
await pool.close();
`;

describe('PortPool when descriptors run out', () => {
  it.runIf(process.platform === 'linux')(
    'stops at the first EMFILE batch and gives a reserve back, so the process can still accept connections',
    () => {
      if (!existsSync(fileURLToPath(POOL))) throw new Error(`${POOL} is missing: run "npm run build" first (npm test does)`);
      const started = Date.now();
      const run = spawnSync('bash', ['-c', `ulimit -n 400; exec "${process.execPath}" --input-type=module -e "$0"`, SCRIPT], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const result = JSON.parse(run.stdout) as { size: number; free: number; failures: number; codes: string[]; afterBind: number };
      // Every failure is the exhaustion itself, in the one batch where it happened; the ports after it are not tried.
      expect(result.codes).toEqual(['EMFILE']);
      expect(result.failures).toBeGreaterThan(0);
      expect(result.failures).toBeLessThanOrEqual(128);
      // A reserve (half of a 400 limit's worth, see descriptorReserve) was closed again; the rest is usable.
      expect(result.size).toBeGreaterThan(100);
      expect(result.size).toBeLessThan(400 - 150);
      expect(result.free).toBe(result.size);
      expect(result.afterBind).toBeLessThanOrEqual(400 - 150);
      expect(Date.now() - started).toBeLessThan(20_000);
    },
    40_000,
  );
});
