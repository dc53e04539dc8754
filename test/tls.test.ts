// NORAY_TLS_CERT / NORAY_TLS_KEY over real sockets: HTTPS and WSS on the lobby, wsrelay and ops
// ports with verification on, plain HTTP refused, and a reload (app.reloadTls(), SIGHUP to the
// real bin, SIGHUP through a --workers primary) that keeps open connections and serves new ones
// the new certificate.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { App } from '../src/app.js';
import { ConfigError, configWith } from '../src/config/load.js';
import { decodeMessage } from '../src/fronts/lobby/codec.js';
import { ALL_OFF, port, startApp } from './helpers/app.js';
import { redisMissing, startRedis } from './helpers/redis.js';
import { cleanEnv, QUIET_PORTS, Run, WAIT_MS } from './helpers/spawned.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BIN = join(ROOT, 'dist', 'bin', 'noray.js');

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const OPENSSL = hasOpenssl();
if (!OPENSSL && process.env.CI === 'true') {
  throw new Error('test/tls.test.ts needs the openssl binary to make its throwaway certificates (apt-get install openssl)');
}
if (!OPENSSL) console.warn('test/tls.test.ts skipped: no openssl binary to make throwaway certificates (CI fails instead)');

let dir = '';
const certPath = () => join(dir, 'cert.pem');
const keyPath = () => join(dir, 'key.pem');

/** A new self-signed certificate for 127.0.0.1 and localhost, written over cert.pem and key.pem. */
function newCertificate(): { pem: Buffer; fingerprint: string } {
  const cert = join(dir, 'new-cert.pem');
  const key = join(dir, 'new-key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { stdio: 'ignore' },
  );
  const pem = readFileSync(cert);
  writeFileSync(certPath(), pem);
  writeFileSync(keyPath(), readFileSync(key));
  return { pem, fingerprint: new X509Certificate(pem).fingerprint256 };
}

/** The fingerprint of the certificate a TLS port presents, verified against `ca`. */
async function servedFingerprint(p: number, ca: Buffer): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port: p, ca, servername: 'localhost' });
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    socket.destroy();
  }
}

interface Answer {
  status: number;
  body: string;
  fingerprint: string;
}

function httpsGet(p: number, path: string, ca: Buffer): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: p, path, ca, agent: false }, (res) => {
      const socket = res.socket;
      const fingerprint = socket instanceof TLSSocket ? socket.getPeerCertificate().fingerprint256 : '';
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body, fingerprint }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A plain HTTP GET to a TLS port: never an HTTP answer. */
function plainGet(p: number, path: string): Promise<'answered' | 'failed'> {
  return new Promise((resolveResult) => {
    const req = httpRequest({ host: '127.0.0.1', port: p, path, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolveResult('answered');
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolveResult('failed'));
    req.end();
  });
}

/** A WebSocket peer with a queue of its text messages. */
class Peer {
  readonly messages: string[] = [];
  private waiters: Array<() => void> = [];
  fingerprint = '';
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('upgrade', (res) => {
      if (res.socket instanceof TLSSocket) this.fingerprint = res.socket.getPeerCertificate().fingerprint256;
    });
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? `binary:${(data as Buffer).length}` : (data as Buffer).toString('utf8'));
      for (const wake of this.waiters.splice(0)) wake();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolveClosed) => ws.on('close', (code) => resolveClosed(code)));
  }

  static open(url: string, ca: Buffer): Promise<Peer> {
    const peer = new Peer(new WebSocket(url, { ca, perMessageDeflate: false }));
    return new Promise((resolveOpen, reject) => {
      peer.ws.once('open', () => resolveOpen(peer));
      peer.ws.once('error', reject);
    });
  }

  send(message: object | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async next(match: (message: string) => boolean = () => true, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.messages.findIndex(match);
      if (index >= 0) return this.messages.splice(index, 1)[0] as string;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }
}

/** A CarParty server and phone in a room on wsrelay over WSS; checks both directions relay. */
async function relayedRoom(p: number, ca: Buffer, code: string): Promise<{ server: Peer; phone: Peer }> {
  const server = await Peer.open(`wss://127.0.0.1:${p}/`, ca);
  server.send({ action: 'login_server', server_code: code });
  const phone = await Peer.open(`wss://localhost:${p}/`, ca);
  phone.send({ action: 'login_client', server_code: code, client_id: 'phone1' });
  expect(await server.next()).toBe(JSON.stringify({ action: 'connect', client_id: 'phone1' }));
  await expectRelays(server, phone, 'hello');
  return { server, phone };
}

async function expectRelays(server: Peer, phone: Peer, text: string): Promise<void> {
  phone.send({ say: text });
  expect(await server.next((m) => m.includes(text))).toContain(text);
  server.send({ action: 'message', client_id: 'phone1', data: { back: text } });
  expect(await phone.next((m) => m.includes(text))).toContain(text);
}

const tlsConfig = () => ({ tlsCert: certPath(), tlsKey: keyPath() });

describe.skipIf(!OPENSSL)('TLS on the lobby, wsrelay and ops ports', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'noray-tls-'));
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS and WSS with a verifiable certificate, refuses plain HTTP, and reloads without dropping connections', async () => {
    const first = newCertificate();
    const app = await startApp({ ...tlsConfig(), lobbyHttpPort: 0, wsrelayPort: 0, httpPort: 0 });
    expect(app.tlsEnabled).toBe(true);
    const lobby = port(app, 'lobby', 'http');
    const wsrelay = port(app, 'wsrelay', 'ws');
    const ops = port(app, 'ops', 'http');

    const lobbies = await httpsGet(lobby, '/lobbies', first.pem);
    expect(lobbies.status).toBe(200);
    expect(lobbies.fingerprint).toBe(first.fingerprint);
    const health = await httpsGet(ops, '/health', first.pem);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });

    for (const p of [lobby, wsrelay, ops]) expect(await plainGet(p, '/health')).toBe('failed');

    const { server, phone } = await relayedRoom(wsrelay, first.pem, 'TLS1');
    expect(phone.fingerprint).toBe(first.fingerprint);

    // Orion-style: the lobby's WebSocket registers the client.
    const orion = await Peer.open(`wss://127.0.0.1:${lobby}/`, first.pem);
    const registered = await orion.next((m) => {
      const decoded = decodeMessage(m);
      return decoded.ok && decoded.method === 'client_registered';
    });
    const payload = decodeMessage(registered);
    expect(payload.ok && typeof payload.payload.token).toBe('string');

    const second = newCertificate();
    expect(second.fingerprint).not.toBe(first.fingerprint);
    expect(app.reloadTls()).toBe(true);
    expect(app.tlsInfo()?.fingerprint).toBe(second.fingerprint);

    // Open connections go on with the old certificate...
    await expectRelays(server, phone, 'after reload');
    expect(orion.ws.readyState).toBe(WebSocket.OPEN);
    // ...new ones get the new one, on every TLS port.
    for (const p of [lobby, wsrelay, ops]) expect(await servedFingerprint(p, second.pem)).toBe(second.fingerprint);
    expect((await httpsGet(ops, '/health', second.pem)).status).toBe(200);
    const late = await Peer.open(`wss://127.0.0.1:${wsrelay}/`, second.pem);
    expect(late.fingerprint).toBe(second.fingerprint);
    // The old certificate no longer verifies new connections.
    await expect(httpsGet(lobby, '/lobbies', first.pem)).rejects.toThrow();

    // A broken file: the reload fails, the current certificate stays.
    writeFileSync(keyPath(), 'not a key\n');
    expect(app.reloadTls()).toBe(false);
    expect(await servedFingerprint(wsrelay, second.pem)).toBe(second.fingerprint);
    await expectRelays(server, phone, 'after failed reload');

    for (const peer of [server, phone, orion, late]) peer.ws.close();
  }, 60_000);

  it('refuses one of the two variables alone, and unreadable or non-PEM files, naming them', () => {
    newCertificate();
    const build = (overrides: { tlsCert?: string; tlsKey?: string }) => () =>
      new App({
        config: configWith({ ...ALL_OFF, lobbyHttpPort: 0, ...overrides }),
        logger: pino({ level: 'silent' }),
        processMetrics: false,
      });
    for (const alone of [{ tlsCert: certPath() }, { tlsKey: keyPath() }] as const) {
      expect(build(alone)).toThrow(ConfigError);
      expect(build(alone)).toThrow(/NORAY_TLS_CERT and NORAY_TLS_KEY/);
    }
    expect(build({ tlsCert: join(dir, 'missing.pem'), tlsKey: keyPath() })).toThrow(/NORAY_TLS_CERT: cannot read .*missing\.pem.*ENOENT/);
    writeFileSync(join(dir, 'junk.pem'), 'hello\n');
    expect(build({ tlsCert: certPath(), tlsKey: join(dir, 'junk.pem') })).toThrow(/NORAY_TLS_KEY: .*junk\.pem.* is not a PEM private key/);
    expect(build({ tlsCert: join(dir, 'junk.pem'), tlsKey: keyPath() })).toThrow(/NORAY_TLS_CERT: .*junk\.pem.* is not a PEM certificate/);
    // The key of another certificate.
    const otherKey = join(dir, 'other-key.pem');
    writeFileSync(otherKey, readFileSync(keyPath()));
    newCertificate();
    expect(build({ tlsCert: certPath(), tlsKey: otherKey })).toThrow(/NORAY_TLS_KEY: .* cannot be used with the certificate/);
  });

  describe('the real bin', () => {
    const runs: Run[] = [];
    afterAll(async () => {
      for (const run of runs) if (run.running) run.child.kill('SIGKILL');
      await Promise.all(runs.map((run) => run.exited.catch(() => undefined)));
    });
    beforeAll(() => {
      if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first (npm test does)`);
    });

    const noray = (args: string[], env: Record<string, string>): Run => {
      const run = new Run(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env) });
      runs.push(run);
      return run;
    };
    const env = () => ({
      ...QUIET_PORTS,
      NORAY_SOCKET_PORT: 'off',
      NORAY_UDP_REGISTRAR_PORT: 'off',
      NORAY_WSRELAY_PORT: '0',
      NORAY_TLS_CERT: certPath(),
      NORAY_TLS_KEY: keyPath(),
    });

    it('SIGHUP reloads the files, an open WSS connection stays, a new one sees the new certificate', async () => {
      const first = newCertificate();
      const run = noray([], env());
      const ready = await run.waitForLog('noray ready');
      const ports = ready.ports as Record<string, Record<string, number>>;
      const wsrelay = ports.wsrelay?.ws as number;
      const ops = ports.ops?.http as number;
      expect((await httpsGet(ops, '/health', first.pem)).status).toBe(200);
      const { server, phone } = await relayedRoom(wsrelay, first.pem, 'BIN1');

      const second = newCertificate();
      run.child.kill('SIGHUP');
      const reloaded = await run.waitForLog('tls reloaded');
      expect(reloaded.tls).toMatchObject({ fingerprint: second.fingerprint });
      expect(run.running).toBe(true);
      await expectRelays(server, phone, 'after SIGHUP');
      expect(await servedFingerprint(wsrelay, second.pem)).toBe(second.fingerprint);

      // An unusable file: logged, the old context stays, nothing stops.
      writeFileSync(certPath(), 'garbage\n');
      run.child.kill('SIGHUP');
      await run.waitForLog('tls reload failed, keeping the old certificate');
      expect(await servedFingerprint(wsrelay, second.pem)).toBe(second.fingerprint);
      await expectRelays(server, phone, 'after failed SIGHUP');

      run.child.kill('SIGTERM');
      expect(await run.exit()).toEqual({ code: 0, signal: null });
    }, 60_000);

    it('a missing file is a config error at start (exit 2)', async () => {
      newCertificate();
      const run = noray([], { ...env(), NORAY_TLS_KEY: join(dir, 'nope.pem') });
      expect(await run.exit()).toEqual({ code: 2, signal: null });
      expect(run.stderr).toMatch(/NORAY_TLS_KEY: cannot read .*nope\.pem/);
    });

    // The workers of --workers N are cluster nodes over Redis: without redis-server this one skips (CI has it).
    it.skipIf(redisMissing() !== null && process.env.CI !== 'true')(
      'with --workers 2, SIGHUP to the primary reloads every worker and stops none',
      async () => {
        const redis = await startRedis();
        try {
          newCertificate();
          const run = noray(['--workers', '2'], { ...env(), NORAY_REDIS_URL: redis.url, NORAY_HTTP_PORT: 'off' });
          await waitForCount(run, 'noray ready', 2);
          const second = newCertificate();
          run.child.kill('SIGHUP');
          await waitForCount(run, 'tls reloaded', 2);
          expect(run.running).toBe(true);
          const fingerprints = run.logs
            .filter((line) => line.msg === 'tls reloaded')
            .map((line) => (line.tls as { fingerprint: string }).fingerprint);
          expect(fingerprints).toEqual([second.fingerprint, second.fingerprint]);
          run.child.kill('SIGTERM');
          expect(await run.exit()).toEqual({ code: 0, signal: null });
        } finally {
          await redis.stop();
        }
      },
      60_000,
    );
  });
});

async function waitForCount(run: Run, msg: string, count: number, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (run.logs.filter((line) => line.msg === msg).length < count) {
    if (Date.now() > deadline || !run.running) throw new Error(`wanted ${count} "${msg}"\n${run.stdout}\n${run.stderr}`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
}
