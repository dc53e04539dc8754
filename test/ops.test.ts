import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../src/app.js';
import { listenTcp } from '../src/fronts/shared/listen.js';
import { throttleDescriptorErrors } from '../src/core/open-files.js';
import { port, startApp } from './helpers/app.js';
import { parseSamples } from './helpers/metrics.js';

const UPSTREAM_METRICS = [
  'noray_tcp_connections',
  'noray_active_hosts',
  'noray_relay_count',
  'noray_relay_drop_count',
  'noray_relay_expired',
  'noray_relay_size',
  'noray_remote_registrar_success',
  'noray_remote_registrar_fail',
  'noray_remote_registrar_repeat',
  'noray_command_duration',
];

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function startNoray(): Promise<App> {
  return startApp({ httpPort: 0, socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0, 0] });
}

function opsUrl(app: App, path: string): string {
  return `http://127.0.0.1:${port(app, 'ops', 'http')}${path}`;
}

/** The value of an unlabelled sample in Prometheus text. */
function sample(text: string, name: string): number | undefined {
  return parseSamples(text).get(name);
}

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

/** A control connection that resolves once the server has answered `register-host` with both ids. */
function registerHost(app: App): Promise<{ oid: string; pid: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: port(app, 'noray', 'control') });
    sockets.push(socket);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('connect', () => socket.write('register-host\n'));
    socket.on('data', (chunk: string) => {
      text += chunk;
      const oid = /^set-oid (\S+)$/m.exec(text)?.[1];
      const pid = /^set-pid (\S+)$/m.exec(text)?.[1];
      if (oid !== undefined && pid !== undefined) resolve({ oid, pid });
    });
  });
}

/** Sends one datagram to the registrar and resolves with the reply. */
function registrarReply(app: App, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.on('error', reject);
    socket.on('message', (message) => {
      socket.close();
      resolve(message.toString('utf8'));
    });
    socket.send(payload, port(app, 'noray', 'registrar'), '127.0.0.1');
  });
}

describe('ops server', () => {
  it('reports its port under ops.http', async () => {
    const app = await startNoray();
    const ports = app.ports();
    expect(ports.ops?.http).toBeGreaterThan(0);
    expect(ports.noray).toMatchObject({ control: expect.any(Number), registrar: expect.any(Number) });
    expect(ports.noray?.relay).toHaveLength(2);
  });

  it('GET /health returns JSON with every front, its ports and stats', async () => {
    const app = await startNoray();
    const response = await fetch(opsUrl(app, '/health'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const health = (await response.json()) as {
      status: string;
      uptimeSeconds: number;
      fronts: Record<string, { ports: Record<string, unknown>; stats: Record<string, number> }>;
    };
    expect(health.status).toBe('ok');
    // The app started moments ago in this test.
    expect(health.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(health.uptimeSeconds).toBeLessThan(60);
    expect(Object.keys(health.fronts)).toEqual(['noray']);
    const noray = health.fronts.noray;
    expect(noray?.ports).toEqual({
      control: port(app, 'noray', 'control'),
      registrar: port(app, 'noray', 'registrar'),
      relay: app.ports().noray?.relay,
    });
    expect(noray?.stats).toMatchObject({ connections: 0, hosts: 0, relays: 0 });
    for (const value of Object.values(noray?.stats ?? {})) expect(typeof value).toBe('number');
  });

  it('/health follows live state', async () => {
    const app = await startNoray();
    await registerHost(app);
    const health = (await (await fetch(opsUrl(app, '/health'))).json()) as {
      fronts: Record<string, { stats: Record<string, number> }>;
    };
    expect(health.fronts.noray?.stats).toMatchObject({ connections: 1, hosts: 1 });
  });

  it("GET /metrics is Prometheus text with upstream noray's metric names", async () => {
    const app = await startNoray();
    const response = await fetch(opsUrl(app, '/metrics'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    const text = await response.text();
    for (const name of UPSTREAM_METRICS) {
      expect(text, name).toMatch(new RegExp(`^# HELP ${name} `, 'm'));
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter|histogram|summary)$`, 'm'));
    }
    expect(text).toMatch(/^# TYPE noray_command_duration histogram$/m);
    expect(sample(text, 'noray_tcp_connections')).toBe(0);
    expect(sample(text, 'noray_relay_count')).toBe(0);
  });

  it('/metrics follows live state: connections, hosts, registrar outcomes', async () => {
    const app = await startNoray();
    const { pid } = await registerHost(app);
    expect(await registrarReply(app, 'y'.repeat(128))).toBe('Unknown host pid!');
    expect(await registrarReply(app, pid)).toBe('OK');
    const text = await (await fetch(opsUrl(app, '/metrics'))).text();
    expect(sample(text, 'noray_tcp_connections')).toBe(1);
    expect(sample(text, 'noray_active_hosts')).toBe(1);
    expect(sample(text, 'noray_remote_registrar_fail')).toBe(1);
    expect(sample(text, 'noray_remote_registrar_success')).toBe(1);
    expect(text).toMatch(/^noray_command_duration_count\{[^}]*command="register-host"[^}]*\} 1$/m);
    // The secret never shows up in metrics.
    expect(text).not.toContain(pid);
  });

  it('an unknown route is 404', async () => {
    const app = await startNoray();
    expect((await fetch(opsUrl(app, '/nope'))).status).toBe(404);
    expect((await fetch(opsUrl(app, '/metrics/extra'))).status).toBe(404);
    expect((await fetch(opsUrl(app, '/health'), { method: 'POST' })).status).toBe(404);
  });

  it('runs without any front', async () => {
    const app = await startApp({ httpPort: 0 });
    expect(Object.keys(app.ports())).toEqual(['ops']);
    const health = (await (await fetch(opsUrl(app, '/health'))).json()) as { fronts: Record<string, unknown> };
    expect(health.fronts).toEqual({});
    const metrics = await fetch(opsUrl(app, '/metrics'));
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
  });

  it('is absent when its port is off, and closes its port on stop', async () => {
    const off = await startApp({ socketPort: 0 });
    expect(hasOps(off)).toBe(false);

    const app = await startNoray();
    const url = opsUrl(app, '/health');
    expect((await fetch(url)).status).toBe(200);
    await app.stop();
    await expect(fetch(url)).rejects.toThrow();
  });
});

function hasOps(app: App): boolean {
  return app.ports().ops !== undefined;
}

describe('listeners out of file descriptors', () => {
  const emfile = () => Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });

  it('a listening server reports EMFILE once, with what to raise, and other errors as they come', async () => {
    const server = createServer();
    const seen: Error[] = [];
    await listenTcp(server, 0, '127.0.0.1', (error) => seen.push(error));
    try {
      for (let i = 0; i < 100; i++) server.emit('error', emfile());
      server.emit('error', Object.assign(new Error('accept ECONNRESET'), { code: 'ECONNRESET' }));
      expect(seen).toHaveLength(2);
      expect(seen[0]?.message).toMatch(/^accept EMFILE: out of file descriptors, new connections are dropped; raise the open-file limit \(ulimit -n \d+, LimitNOFILE=\d+ in systemd\)/);
      expect((seen[0] as NodeJS.ErrnoException).code).toBe('EMFILE');
      expect(seen[1]?.message).toBe('accept ECONNRESET');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('says how many it left out when the next minute reports again', () => {
    let now = 0;
    const seen: string[] = [];
    const report = throttleDescriptorErrors((error) => seen.push(error.message), { now: () => now });
    report(emfile());
    for (let i = 0; i < 5; i++) report(emfile());
    now = 59_999;
    report(emfile());
    expect(seen).toHaveLength(1);
    now = 60_000;
    report(emfile());
    expect(seen).toHaveLength(2);
    expect(seen[1]).toContain('(6 more in the last minute)');
  });
});
