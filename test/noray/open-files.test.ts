// The first `npm start` on a stock shell: the default config under `ulimit -n 1024`, the real bin.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { cleanEnv, Run } from '../helpers/spawned.js';
import { describeEachEngine } from '../helpers/relay-engines.js';
import { bindLocalPort, NetfoxClient } from '../clients/netfox.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');
const DEFAULT_RELAY_START = 49152;
const DEFAULT_RELAY_COUNT = 2049;

/** Every listener of the default config on a free port; relay ports, hosts and limits stay default. */
const FREE_PORTS: Record<string, string> = {
  NORAY_SOCKET_PORT: '0',
  NORAY_UDP_REGISTRAR_PORT: '0',
  NORAY_HTTP_PORT: '0',
  NORAY_LOBBY_HTTP_PORT: '0',
  NORAY_LOBBY_UDP_PORT: '0',
  NORAY_WSRELAY_PORT: '0',
  NORAY_TCPRELAY_PORT: '0',
};

const runs: Run[] = [];
const clients: NetfoxClient[] = [];
const sockets: UdpSocket[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const socket of sockets.splice(0)) socket.close();
  for (const run of runs.splice(0)) {
    if (run.running) {
      run.child.kill('SIGKILL');
      await run.exited.catch(() => undefined);
    }
  }
});

/** Whether every UDP port from `start` on (count of them) can be bound on every address right now. */
async function udpRangeFree(start: number, count: number): Promise<boolean> {
  for (let base = start; base < start + count; base += 128) {
    const batch = Array.from({ length: Math.min(128, start + count - base) }, (_, i) => base + i);
    const bound = await Promise.all(
      batch.map(
        (port) =>
          new Promise<UdpSocket | null>((done) => {
            const socket = createSocket('udp4');
            socket.once('error', () => {
              socket.close();
              done(null);
            });
            socket.bind(port, '0.0.0.0', () => done(socket));
          }),
      ),
    );
    await Promise.all(bound.map((socket) => (socket ? new Promise<void>((done) => socket.close(() => done())) : undefined)));
    if (bound.some((socket) => socket === null)) return false;
  }
  return true;
}

/** The default relay range if it is free here, otherwise a free range of the same size. */
async function relayRange(): Promise<{ env: Record<string, string>; first: number }> {
  for (const first of [DEFAULT_RELAY_START, 20_000, 22_100, 24_200, 26_300]) {
    if (await udpRangeFree(first, DEFAULT_RELAY_COUNT)) {
      const env: Record<string, string> =
        first === DEFAULT_RELAY_START ? {} : { NORAY_UDP_RELAY_PORTS: `${first}-${first + DEFAULT_RELAY_COUNT - 1}` };
      return { env, first };
    }
  }
  throw new Error(`no free range of ${DEFAULT_RELAY_COUNT} UDP ports found`);
}

async function player(controlPort: number): Promise<NetfoxClient> {
  const client = await NetfoxClient.connect(controlPort);
  clients.push(client);
  await client.registerHost();
  return client;
}

async function relayedOnce(from: UdpSocket, to: UdpSocket, relayPort: number, payload: string): Promise<string> {
  const received = new Promise<string>((done) => to.once('message', (message) => done(message.toString('utf8'))));
  from.send(payload, relayPort, '127.0.0.1');
  return received;
}

describeEachEngine('the default config under ulimit -n 1024', (engine) => {
  it.runIf(process.platform === 'linux')(
    'starts, relays, says once what to raise, and stops with exit 0',
    async () => {
      if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first (npm test does)`);
      const { env, first } = await relayRange();
      const run = new Run('bash', ['-c', `ulimit -n 1024; exec "${process.execPath}" "${BIN}"`], {
        cwd: ROOT,
        env: cleanEnv({ ...FREE_PORTS, ...env, NORAY_UDP_RELAY_ENGINE: engine }),
      });
      runs.push(run);
      const ready = await run.waitForLog('noray ready');
      const ports = ready.ports as Record<string, Record<string, number>>;
      const control = ports.noray?.control as number;
      const registrar = ports.noray?.registrar as number;

      // One warning, with the numbers and what to do.
      const hints = run.logs.filter((line) => /ulimit -n/.test(line.msg ?? ''));
      expect(hints).toHaveLength(1);
      const hint = hints[0]?.msg ?? '';
      expect(hint).toMatch(/^bound \d+ of 2049 relay ports: the open-file limit \(ulimit -n 1024\) leaves room for 768 of them/);
      expect(hint).toContain('ulimit -n 4096');
      expect(hint).toContain('LimitNOFILE=');
      expect(hint).toContain('NORAY_UDP_RELAY_PORTS');
      expect(run.stdout).not.toContain('EMFILE');
      const bound = Number(/^bound (\d+)/.exec(hint)?.[1]);
      // Another process may hold a port of the range by now; those are reported in the same line.
      expect(bound).toBeGreaterThan(700);
      expect(bound).toBeLessThanOrEqual(768);

      // /health shows the partial range.
      const health = (await (await fetch(`http://127.0.0.1:${ports.ops?.http}/health`)).json()) as {
        fronts: Record<string, { stats: Record<string, number> }>;
      };
      expect(health.fronts.noray?.stats).toMatchObject({ relayPortsBound: bound, relayPortsConfigured: 2049 });

      // Descriptors left for connections: the reserve, minus the fronts' listeners.
      const fds = readdirSync(`/proc/${run.child.pid}/fd`).length;
      expect(fds).toBeLessThan(1024 - 200);

      // A netfox host and client: register-host, registrar OK, connect-relay, datagrams both ways.
      const host = await player(control);
      expect(await host.registerRemote(registrar)).toBe('OK');
      const client = await player(control);
      expect(await client.registerRemote(registrar)).toBe('OK');
      client.putCommand('connect-relay', host.oid);
      const hostRelayPort = Number(await client.next('connect-relay'));
      const clientRelayPort = Number(await host.next('connect-relay'));
      for (const relayPort of [hostRelayPort, clientRelayPort]) {
        expect(relayPort).toBeGreaterThanOrEqual(first);
        expect(relayPort).toBeLessThan(first + 768);
      }
      const hostUdp = await bindLocalPort(host.localPort);
      const clientUdp = await bindLocalPort(client.localPort);
      sockets.push(hostUdp, clientUdp);
      expect(await relayedOnce(clientUdp, hostUdp, hostRelayPort, 'to host')).toBe('to host');
      expect(await relayedOnce(hostUdp, clientUdp, clientRelayPort, 'to client')).toBe('to client');

      run.child.kill('SIGTERM');
      expect(await run.exit()).toEqual({ code: 0, signal: null });
      expect(run.logs.filter((line) => /ulimit -n/.test(line.msg ?? ''))).toHaveLength(1);
      expect(run.stderr).toBe('');
    },
    60_000,
  );
});
