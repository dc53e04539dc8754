// When descriptors run out anyway (many sources, each within its limits), the server keeps
// serving the connections it has (libuv sheds the connections it cannot accept: it closes a
// spare descriptor, accepts and closes them, without telling Node) and recovers by itself: the handshake
// deadline closes the silent connections and new players get in again, without a restart.
import { connect as tcpConnect, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { NetfoxClient } from '../clients/netfox.js';
import { eventually } from '../clients/orion.js';
import { cleanEnv, QUIET_PORTS, Run } from '../helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');
const OPEN_FILE_LIMIT = 300;

const runs: Run[] = [];
const clients: NetfoxClient[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const client of clients.splice(0)) client.close();
  for (const run of runs.splice(0)) {
    if (run.running) run.child.kill('SIGKILL');
    await run.exited.catch(() => undefined);
  }
});

/** Opens a connection and keeps it silent; resolves once connected (accepted or only queued) or failed. */
function silent(port: number): Promise<Socket> {
  return new Promise((done) => {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.once('connect', () => done(socket));
    socket.once('close', () => done(socket));
  });
}

async function echo(client: NetfoxClient, text: string): Promise<string> {
  client.putCommand('echo', text);
  return client.next('echo', 5000);
}

describe('out of file descriptors', () => {
  it.runIf(process.platform === 'linux')(
    'keeps serving open connections and takes new players again once the silent connections time out',
    async () => {
      if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first (npm test does)`);
      const run = new Run('bash', ['-c', `ulimit -n ${OPEN_FILE_LIMIT}; exec "${process.execPath}" "${BIN}"`], {
        cwd: ROOT,
        env: cleanEnv({
          ...QUIET_PORTS,
          NORAY_WSRELAY_PORT: '0',
          NORAY_HANDSHAKE_TIMEOUT: '1500ms',
          // Stands for many sources, each within its share: one loopback source may take them all.
          NORAY_MAX_CONNECTIONS_PER_IP: '100000',
          NORAY_LOGLEVEL: 'info',
        }),
      });
      runs.push(run);
      const ready = await run.waitForLog('noray ready');
      const ports = ready.ports as Record<string, Record<string, number>>;
      const control = ports.noray?.control as number;
      const ws = ports.wsrelay?.ws as number;

      const host = await NetfoxClient.connect(control);
      clients.push(host);
      await host.registerHost();
      expect(await echo(host, 'before')).toBe('before');

      // More silent connections than the process has descriptors: libuv sheds what it cannot accept.
      const flood = await Promise.all(Array.from({ length: OPEN_FILE_LIMIT + 100 }, () => silent(ws)));
      await new Promise((done) => setTimeout(done, 300));
      const shed = flood.filter((socket) => socket.destroyed || socket.readyState !== 'open').length;
      expect(shed).toBeGreaterThan(0);

      // The connection it has is served all along.
      expect(await echo(host, 'during')).toBe('during');

      // Within the handshake deadline (and libuv's retry of the backlog), newcomers get in again.
      await eventually(async () => {
        const client = await NetfoxClient.connect(control).catch(() => null);
        if (client === null) return false;
        clients.push(client);
        try {
          await client.registerHost();
          return client.oid !== '';
        } catch {
          return false;
        }
      }, 15_000);
      expect(await echo(host, 'after')).toBe('after');
      // Accept errors that do reach Node are logged once a minute at most (throttleDescriptorErrors).
      expect(run.logs.filter((line) => /out of file descriptors/.test(JSON.stringify(line))).length).toBeLessThanOrEqual(1);
      expect(run.running).toBe(true);
    },
    60_000,
  );
});
