// NORAY_OPS_TOKEN: the ops port behind a bearer token, over a real socket with Node's fetch.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { App } from '../src/app.js';
import { ConfigError, parseCli, resolveConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { AUTH_LOG_EVERY_MS, isLoopbackHost, OpsServer } from '../src/ops/http.js';
import { ALL_OFF, port, startApp } from './helpers/app.js';
import { parseSamples } from './helpers/metrics.js';

const TOKEN = 'ops-token-0123456789abcdef';
const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type LogLine = { level: number; msg: string; [key: string]: unknown };

function capture() {
  const lines: LogLine[] = [];
  const text: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        text.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), lines, text };
}

const WARN = 40;

function startOps(overrides: Partial<Config> = {}, logger = pino({ level: 'silent' })): Promise<App> {
  return startApp({ httpPort: 0, socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0], ...overrides }, { logger });
}

function url(app: App, path: string): string {
  return `http://127.0.0.1:${port(app, 'ops', 'http')}${path}`;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function expectRefused(response: Response, challenge = /^Bearer realm="noray ops"/): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get('www-authenticate')).toMatch(challenge);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as { error: string };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toMatch(/^unauthorized/);
}

describe('ops port without NORAY_OPS_TOKEN', () => {
  it('is open as before: /metrics, /health details, 404 for unknown routes; the auth metric stays empty', async () => {
    const app = await startOps();
    const metrics = await fetch(url(app, '/metrics'));
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    const text = await metrics.text();
    expect(text).toMatch(/^# TYPE noray_ops_auth_failures_total counter$/m);
    expect(text).not.toMatch(/^noray_ops_auth_failures_total\{/m);
    const health = (await (await fetch(url(app, '/health'))).json()) as Record<string, unknown>;
    expect(Object.keys(health)).toEqual(['status', 'uptimeSeconds', 'fronts', 'process']);
    expect((await fetch(url(app, '/nope'))).status).toBe(404);
    // A client that sends a token anyway is not refused.
    expect((await fetch(url(app, '/metrics'), { headers: bearer('whatever-it-sends-1234') })).status).toBe(200);
  });

  it('warns once at start when the ops host is not loopback', async () => {
    const exposed = capture();
    await startOps({ httpHost: '0.0.0.0' }, exposed.logger);
    const warnings = exposed.lines.filter((line) => line.level === WARN && line.msg.startsWith('ops port exposed without NORAY_OPS_TOKEN'));
    expect(warnings).toHaveLength(1);

    const local = capture();
    await startOps({ httpHost: '127.0.0.1' }, local.logger);
    const withToken = capture();
    await startOps({ httpHost: '0.0.0.0', opsToken: TOKEN }, withToken.logger);
    for (const { lines } of [local, withToken]) {
      expect(lines.filter((line) => line.msg.includes('without NORAY_OPS_TOKEN'))).toEqual([]);
    }
  });

  it('knows the loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '128.0.0.1']) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});

describe('ops port with NORAY_OPS_TOKEN', () => {
  it('/metrics: 401 without a token and with a wrong one, 200 with the right one', async () => {
    const app = await startOps({ opsToken: TOKEN });
    await expectRefused(await fetch(url(app, '/metrics')));
    await expectRefused(await fetch(url(app, '/metrics'), { headers: bearer(`${TOKEN}x`) }), /error="invalid_token"/);
    await expectRefused(await fetch(url(app, '/metrics'), { headers: bearer(TOKEN.slice(0, -1)) }));
    await expectRefused(await fetch(url(app, '/metrics'), { headers: { authorization: TOKEN } }));
    await expectRefused(await fetch(url(app, '/metrics'), { headers: { authorization: `Basic ${TOKEN}` } }));

    const ok = await fetch(url(app, '/metrics'), { headers: bearer(TOKEN) });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(await ok.text()).toMatch(/^# TYPE noray_tcp_connections gauge$/m);
    // The scheme is case-insensitive (RFC 7235).
    expect((await fetch(url(app, '/metrics'), { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('/health: only the status without the right token, every detail with it', async () => {
    const app = await startOps({ opsToken: TOKEN });
    for (const headers of [{}, bearer('not-the-token-at-all-0000')]) {
      const response = await fetch(url(app, '/health'), { headers });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('{"status":"ok"}');
    }
    expect((await fetch(url(app, '/health'), { method: 'HEAD' })).status).toBe(200);
    const full = await fetch(url(app, '/health'), { headers: bearer(TOKEN) });
    expect(full.status).toBe(200);
    const health = (await full.json()) as { status: string; fronts: Record<string, { ports: Record<string, unknown> }> };
    expect(health.status).toBe('ok');
    expect(Object.keys(health)).toEqual(['status', 'uptimeSeconds', 'fronts', 'process']);
    expect(health.fronts.noray?.ports.control).toBe(port(app, 'noray', 'control'));
  });

  it('hides which routes exist: 401 for unknown paths and methods without the token, 404 with it', async () => {
    const app = await startOps({ opsToken: TOKEN });
    for (const [path, method] of [['/nope', 'GET'], ['/metrics/extra', 'GET'], ['/health', 'POST'], ['/', 'DELETE']] as const) {
      await expectRefused(await fetch(url(app, path), { method }));
      expect((await fetch(url(app, path), { method, headers: bearer(TOKEN) })).status, `${method} ${path}`).toBe(404);
    }
  });

  it('counts failed attempts in noray_ops_auth_failures_total; a token-less /health probe is not one', async () => {
    const app = await startOps({ opsToken: TOKEN });
    await fetch(url(app, '/metrics'));
    await fetch(url(app, '/nope'));
    await fetch(url(app, '/metrics'), { headers: bearer('wrong-token-wrong-token') });
    await fetch(url(app, '/health'), { headers: bearer('wrong-token-wrong-token') });
    await fetch(url(app, '/health'));
    const samples = parseSamples(await (await fetch(url(app, '/metrics'), { headers: bearer(TOKEN) })).text());
    expect(samples.get('noray_ops_auth_failures_total{reason="missing"}')).toBe(2);
    expect(samples.get('noray_ops_auth_failures_total{reason="invalid"}')).toBe(2);
  });

  it('logs failed attempts at most once a minute, saying how many it left out, never the token sent', async () => {
    const { logger, lines, text } = capture();
    let now = 1_000_000;
    const ops = new OpsServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Registry(),
      fronts: () => [],
      logger,
      startedAt: Date.now(),
      token: TOKEN,
      now: () => now,
    });
    await ops.start();
    try {
      const opsUrl = `http://127.0.0.1:${ops.port}/metrics`;
      const sent = 'a-token-someone-tried-1234';
      for (let i = 0; i < 10; i++) await fetch(opsUrl, { headers: bearer(sent) });
      const failures = () => lines.filter((line) => line.msg.startsWith('ops request without a valid NORAY_OPS_TOKEN'));
      expect(failures()).toHaveLength(1);
      expect(failures()[0]).toMatchObject({ level: WARN, reason: 'invalid', suppressedSinceLastLog: 0 });
      now += AUTH_LOG_EVERY_MS - 1;
      await fetch(opsUrl);
      expect(failures()).toHaveLength(1);
      now += 1;
      await fetch(opsUrl);
      expect(failures()).toHaveLength(2);
      expect(failures()[1]).toMatchObject({ reason: 'missing', suppressedSinceLastLog: 10 });
      expect(text.join('\n')).not.toContain(sent);
    } finally {
      await ops.stop();
    }
  });

  it('never shows the token in the effective-config log', async () => {
    const { logger, lines, text } = capture();
    const { config } = resolveConfig({ env: { NORAY_OPS_TOKEN: TOKEN } });
    expect(config.opsToken).toBe(TOKEN);
    const app = await startApp({ ...config, ...ALL_OFF, httpPort: 0 }, { logger });
    expect((await fetch(url(app, '/metrics'), { headers: bearer(TOKEN) })).status).toBe(200);
    const effective = lines.find((line) => line.msg === 'effective config') as { config: Record<string, unknown> } | undefined;
    expect(effective?.config.opsToken).toBe('<redacted>');
    expect(text.join('\n')).not.toContain(TOKEN);
  });
});

describe('NORAY_OPS_TOKEN config', () => {
  it('is read from the environment, a flag or .env; empty means unset', () => {
    expect(resolveConfig({}).config.opsToken).toBeNull();
    expect(resolveConfig({ env: { NORAY_OPS_TOKEN: '' } }).config.opsToken).toBeNull();
    expect(resolveConfig({ env: { NORAY_OPS_TOKEN: ` ${TOKEN} ` } }).config.opsToken).toBe(TOKEN);
    expect(resolveConfig({ envFile: { NORAY_OPS_TOKEN: TOKEN } }).config.opsToken).toBe(TOKEN);
    const { flags } = parseCli(['--ops-token', TOKEN]);
    expect(resolveConfig({ flags }).config.opsToken).toBe(TOKEN);
  });

  it('refuses a token shorter than 16 characters, or with spaces, without repeating it', () => {
    for (const [token, reason] of [
      ['short-token-15ch', null],
      ['fifteen-chars!!', /at least 16 characters/],
      ['has a space in the middle', /visible ASCII characters, no spaces/],
    ] as const) {
      if (reason === null) {
        expect(resolveConfig({ env: { NORAY_OPS_TOKEN: token } }).config.opsToken).toBe(token);
        continue;
      }
      let error: unknown;
      try {
        resolveConfig({ env: { NORAY_OPS_TOKEN: token } });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(/NORAY_OPS_TOKEN \(--ops-token, from env\)/);
      expect(message).toMatch(reason);
      expect(message).not.toContain(token);
    }
  });

  it('an embedder passing a short token straight to the ops server is refused too', () => {
    const make = () =>
      new OpsServer({
        host: '127.0.0.1',
        port: 0,
        metrics: new Registry(),
        fronts: () => [],
        logger: pino({ level: 'silent' }),
        startedAt: 0,
        token: 'short',
      });
    expect(make).toThrow(ConfigError);
  });
});
