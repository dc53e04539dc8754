// The dashboard's stream and actions over real sockets (the page itself: dashboard-browser.test.ts).
import { afterEach, describe, expect, it } from 'vitest';
import type { DashboardSnapshot } from '../../src/ops/dashboard/snapshot.js';
import { port, startApp } from '../helpers/app.js';
import { relayEngineKinds } from '../helpers/relay-engines.js';
import { OPS_TOKEN, scrape, startBusyServer, type BusyServer } from './busy-server.js';

const AUTH = { authorization: `Bearer ${OPS_TOKEN}` };

/** Reads a dashboard stream as the page does (fetch with the bearer header, server-sent events). */
class StreamReader {
  private readonly abort = new AbortController();
  private buffered = '';
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private readonly decoder = new TextDecoder();
  status = 0;
  headers: Headers | null = null;

  static async open(ops: string, search = '', headers: Record<string, string> = AUTH): Promise<StreamReader> {
    const stream = new StreamReader();
    const response = await fetch(`${ops}/dashboard/stream?search=${encodeURIComponent(search)}`, { headers, signal: stream.abort.signal });
    stream.status = response.status;
    stream.headers = response.headers;
    if (response.ok && response.body) stream.reader = response.body.getReader();
    else await response.body?.cancel();
    return stream;
  }

  async next(timeoutMs = 5000): Promise<DashboardSnapshot> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffered.indexOf('\n\n');
      if (end >= 0) {
        const event = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 2);
        expect(event.split('\n')[0]).toBe('event: snapshot');
        const data = event.split('\n').find((line) => line.startsWith('data: '));
        return JSON.parse((data ?? '').slice(6)) as DashboardSnapshot;
      }
      if (!this.reader) throw new Error(`stream answered ${this.status}`);
      if (Date.now() > deadline) throw new Error('no snapshot in time');
      const { value, done } = await this.reader.read();
      if (done) throw new Error('stream ended');
      this.buffered += this.decoder.decode(value, { stream: true });
    }
  }

  /** The first snapshot for which `check` holds. */
  async until(check: (snapshot: DashboardSnapshot) => boolean, timeoutMs = 8000): Promise<DashboardSnapshot> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const snapshot = await this.next(Math.max(1, deadline - Date.now()));
      if (check(snapshot)) return snapshot;
    }
  }

  close(): void {
    this.abort.abort();
  }
}

const streams: StreamReader[] = [];
let busy: BusyServer | null = null;
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await busy?.close();
  busy = null;
});

async function open(ops: string, search = '', headers: Record<string, string> = AUTH): Promise<StreamReader> {
  const stream = await StreamReader.open(ops, search, headers);
  streams.push(stream);
  return stream;
}

function table(snapshot: DashboardSnapshot, front: string, id: string) {
  const found = snapshot.tables.find((candidate) => candidate.front === front && candidate.id === id);
  if (!found) throw new Error(`no table ${front}.${id}`);
  return found;
}

describe('dashboard stream', () => {
  it('sends a snapshot a second whose figures are /metrics own, with every front, tables and history', async () => {
    busy = await startBusyServer();
    const stream = await open(busy.ops);
    expect(stream.status).toBe(200);
    expect(stream.headers?.get('content-type')).toMatch(/^text\/event-stream/);
    const first = await stream.next();
    expect(first.series.length).toBeGreaterThanOrEqual(1);
    const second = await stream.next();
    // One point each after the first (which carried the whole history), about a second apart.
    expect(second.series).toHaveLength(1);
    expect(second.at - first.at).toBeGreaterThan(700);
    expect(second.at - first.at).toBeLessThan(2500);

    // Nothing moves now, so the stream and /metrics must agree on every series the page shows.
    const metrics = await scrape(busy.ops);
    const snapshot = await stream.next();
    for (const [key, value] of Object.entries(snapshot.metrics)) expect([key, value]).toEqual([key, metrics.get(key) ?? 0]);
    expect(snapshot.metrics).toMatchObject({
      noray_active_hosts: 2,
      noray_relay_count: 2,
      noray_relay_packets_total: 30,
      noray_relay_bytes_total: 2500,
      noray_connect_pairs_total: 1,
      noray_connect_relay_fallbacks_total: 1,
      noray_lobby_lobbies: 1,
      noray_lobby_clients: 2,
      noray_wsrelay_rooms: 1,
      noray_wsrelay_clients: 2,
      noray_tcprelay_ids: 2,
    });
    expect(snapshot.punchthrough).toEqual({ pairs: 1, fallbacks: 1 });
    expect(Object.keys(snapshot.fronts).sort()).toEqual(['lobby', 'noray', 'tcprelay', 'wsrelay']);
    expect(snapshot.node).toMatchObject({ id: 'local', clustered: false, actions: true });
    expect(snapshot.process.rssBytes).toBeGreaterThan(0);

    const hosts = table(snapshot, 'noray', 'hosts');
    expect(hosts.rows.map((row) => row[0]).sort()).toEqual(['alpha-host', 'bravo-client']);
    // Each relayed player: one relay port, and what was relayed to it (the client sent 20 x 100 B, the host 10 x 50 B).
    expect(Object.fromEntries(hosts.rows.map((row) => [row[0], [row[2], row[3]]]))).toEqual({
      'alpha-host': [1, 2000],
      'bravo-client': [1, 500],
    });
    // Never a PrivateID anywhere in what the page gets.
    const text = JSON.stringify(snapshot);
    for (const player of busy.players.values()) expect(text).not.toContain(player.pid);
    expect(table(snapshot, 'wsrelay', 'rooms').rows).toEqual([[busy.room.code, 2, expect.any(Number)]]);
    expect(table(snapshot, 'tcprelay', 'clients').rows.map((row) => row[0]).sort()).toEqual(['rocco-one', 'rocco-two']);
    expect(table(snapshot, 'lobby', 'lobbies').rows).toEqual([[busy.lobbyId, 'Friday league', 2, 4]]);
  });

  for (const engine of relayEngineKinds()) {
    it(`shows each host's relay ports and the bytes relayed to it [${engine} engine]`, async () => {
      busy = await startBusyServer({ udpRelayEngine: engine });
      const hosts = table(await (await open(busy.ops)).next(), 'noray', 'hosts');
      expect(Object.fromEntries(hosts.rows.map((row) => [row[0], [row[2], row[3]]]))).toEqual({
        'alpha-host': [1, 2000],
        'bravo-client': [1, 500],
      });
    });
  }

  it('filters every table by the search, case-insensitively, and counts the matches', async () => {
    busy = await startBusyServer();
    const snapshot = await (await open(busy.ops, 'ALPHA')).next();
    expect(table(snapshot, 'noray', 'hosts')).toMatchObject({ total: 1, rows: [['alpha-host', expect.any(Number), 1, 2000]] });
    expect(table(snapshot, 'tcprelay', 'clients').total).toBe(0);
    expect((await open(busy.ops, 'x'.repeat(101))).status).toBe(400);
  });

  it('computes nothing while no page is open', async () => {
    busy = await startBusyServer();
    const ops = busy.app.opsStats();
    expect(ops?.dashboards).toBe(0);
    const stream = await open(busy.ops);
    await stream.next();
    expect(busy.app.opsStats()?.dashboards).toBe(1);
    stream.close();
    const deadline = Date.now() + 3000;
    while (busy.app.opsStats()?.dashboards !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(busy.app.opsStats()?.dashboards).toBe(0);
  });
});

describe('dashboard limits', () => {
  it('serves 16 pages at once per node; the next is refused with 503 and counted', async () => {
    busy = await startBusyServer();
    for (let i = 0; i < 16; i++) expect((await open(busy.ops)).status).toBe(200);
    const refused = await open(busy.ops);
    expect(refused.status).toBe(503);
    const metrics = await scrape(busy.ops);
    expect(metrics.get('noray_limit_rejections_total{front="ops",reason="max_dashboards"}')).toBe(1);
    streams.pop()?.close();
    streams.pop()?.close();
    const deadline = Date.now() + 3000;
    while (busy.app.opsStats()?.dashboards !== 15 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await open(busy.ops)).status).toBe(200);
  });
});

describe('dashboard access', () => {
  it('serves the page and its scripts to anyone, the figures and actions only with the token', async () => {
    busy = await startBusyServer();
    const page = await fetch(`${busy.ops}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="dashboard/app.js">');
    for (const asset of ['app.js', 'style.css', 'uPlot.iife.min.js', 'uPlot.min.css']) {
      const response = await fetch(`${busy.ops}/dashboard/${asset}`);
      expect([asset, response.status]).toEqual([asset, 200]);
    }
    // The page's script talks to this server only: no import, no absolute address.
    const app = await (await fetch(`${busy.ops}/dashboard/app.js`)).text();
    expect(app).not.toMatch(/^import /m);
    expect(app).not.toMatch(/https?:\/\//);
    expect((await fetch(`${busy.ops}/dashboard/..%2Fpackage.json`)).status).toBe(404);

    expect((await open(busy.ops, '', {})).status).toBe(401);
    expect((await open(busy.ops, '', { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
    const action = (headers: Record<string, string>) =>
      fetch(`${busy?.ops}/dashboard/action`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ front: 'noray', action: 'end-session', key: 'alpha-host' }),
      });
    expect((await action({})).status).toBe(401);
    expect(busy.players.get('alpha-host')?.closed).toBe(false);
  });

  it('refuses operator actions on a server without NORAY_OPS_TOKEN, where the dashboard is open to all', async () => {
    const app = await startApp({ httpPort: 0, socketPort: 0, udpRegistrarPort: 0, udpRelayPorts: [0] });
    const ops = `http://127.0.0.1:${port(app, 'ops', 'http')}`;
    const snapshot = await (await open(ops, '', {})).next();
    expect(snapshot.node.actions).toBe(false);
    const response = await fetch(`${ops}/dashboard/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ front: 'noray', action: 'end-session', key: 'anyone' }),
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: string }).error).toContain('NORAY_OPS_TOKEN');
  });
});

describe('operator actions', () => {
  const act = (ops: string, body: unknown) =>
    fetch(`${ops}/dashboard/action`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('end-session closes the host control connection with an error line, and its session ends', async () => {
    busy = await startBusyServer();
    const host = busy.players.get('alpha-host');
    if (!host) throw new Error('no host');
    const response = await act(busy.ops, { front: 'noray', action: 'end-session', key: 'alpha-host' });
    expect([response.status, await response.json()]).toEqual([200, { outcome: 'done' }]);
    expect(await host.next('error')).toBe('session');
    await host.waitClosed();
    const stream = await open(busy.ops);
    const snapshot = await stream.until((candidate) => candidate.metrics.noray_active_hosts === 1);
    expect(table(snapshot, 'noray', 'hosts').rows.map((row) => row[0])).toEqual(['bravo-client']);
    expect(busy.players.get('bravo-client')?.closed).toBe(false);
    expect((await act(busy.ops, { front: 'noray', action: 'end-session', key: 'alpha-host' })).status).toBe(404);
  });

  it('close-room closes the game server connection; its phones are told and the code is free', async () => {
    busy = await startBusyServer();
    const response = await act(busy.ops, { front: 'wsrelay', action: 'close-room', key: busy.room.code });
    expect(response.status).toBe(200);
    expect((await busy.room.server.closed).code).toBe(1001);
    for (const phone of busy.room.phones) expect((await phone.closed).code).toBe(1000);
    const snapshot = await (await open(busy.ops)).until((candidate) => candidate.metrics.noray_wsrelay_rooms === 0);
    expect(table(snapshot, 'wsrelay', 'rooms').rows).toEqual([]);
  });

  it('disconnect closes a tcprelay client; unknown fronts, actions and bodies are refused', async () => {
    busy = await startBusyServer();
    expect((await act(busy.ops, { front: 'tcprelay', action: 'disconnect', key: 'rocco-one' })).status).toBe(200);
    await (await open(busy.ops)).until((candidate) => candidate.metrics.noray_tcprelay_ids === 1);
    expect((await act(busy.ops, { front: 'nope', action: 'disconnect', key: 'x' })).status).toBe(404);
    expect((await act(busy.ops, { front: 'tcprelay', action: 'explode', key: 'x' })).status).toBe(400);
    expect((await act(busy.ops, { front: 'lobby', action: 'close-room', key: busy.lobbyId })).status).toBe(400);
    expect((await act(busy.ops, { front: 'noray' })).status).toBe(400);
    expect((await act(busy.ops, { front: 'noray', action: 'end-session', key: 'k'.repeat(257) })).status).toBe(400);
  });
});
