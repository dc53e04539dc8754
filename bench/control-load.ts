/**
 * Load generator for the control planes (runs as a child process, driven over IPC): noray
 * register+registrar+connect-relay flows, lobby create+join+mediation flows, wsrelay fan-out to
 * phones, tcprelay frames. Each works the same against noray and against the bare baselines.
 * The noray flow's TCP side uses the client SDK. Raw on purpose: the registrar step (answered at
 * once here, where the SDK keeps netfox's 100 ms poll, which would cap the load at concurrency /
 * 100 ms and measure the client's timer), the lobby flow (the SDK's LobbyClient, with fetch and
 * schema checks, cost the generator about 3x the CPU per flow in `bench:quick`, enough to make the
 * generator the limit), and the wsrelay fan-out and tcprelay frames, whose receivers count frames
 * without parsing them.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { EventQueue, NorayClient, type NorayEvents } from '../src/client/node.js';
import { serve } from './lib/rpc.js';

const HOST = '127.0.0.1';

function udpSocket(): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, HOST, () => {
      socket.removeListener('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/** Sends `payload` from `socket` every 100 ms until a datagram comes back (the registrar dance, answered at once). */
function udpUntilReply(socket: UdpSocket, payload: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const timer = setInterval(() => {
      if (++tries > 50) {
        finish();
        reject(new Error('no UDP reply'));
      } else socket.send(payload, port, HOST);
    }, 100);
    const onMessage = (message: Buffer) => {
      finish();
      resolve(message.toString());
    };
    const finish = () => {
      clearInterval(timer);
      socket.removeListener('message', onMessage);
    };
    socket.on('message', onMessage);
    socket.send(payload, port, HOST);
  });
}

/** Runs `flow` in `concurrency` loops until the deadline; counts completed flows and errors. */
async function closedLoop(concurrency: number, durationMs: number, setup: () => Promise<() => Promise<void>>): Promise<{ flows: number; errors: number; elapsedMs: number; firstError: string | null }> {
  let flows = 0;
  let errors = 0;
  let firstError: string | null = null;
  const start = performance.now();
  const deadline = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const flow = await setup();
      while (performance.now() < deadline && errors < 1000) {
        try {
          await flow();
          flows++;
        } catch (error) {
          errors++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  return { flows, errors, elapsedMs: performance.now() - start, firstError };
}

/** noray: host and client register, both register their UDP address, the client asks connect-relay. */
function norayFlows(params: { control: number; registrar: number; concurrency: number; durationMs: number }) {
  return closedLoop(params.concurrency, params.durationMs, async () => {
    // Each worker keeps its two UDP sockets, so relays are reused rather than piling up.
    const hostUdp = await udpSocket();
    const clientUdp = await udpSocket();
    const options = { host: HOST, port: params.control, registrarPort: params.registrar };
    return async () => {
      const [host, client] = await Promise.all([NorayClient.connect(options), NorayClient.connect(options)]);
      const hostEvents = new EventQueue<NorayEvents>(host, ['connect-relay']);
      try {
        await Promise.all([host.register(), client.register()]);
        const [a, b] = await Promise.all([udpUntilReply(hostUdp, host.pid, params.registrar), udpUntilReply(clientUdp, client.pid, params.registrar)]);
        if (a !== 'OK' || b !== 'OK') throw new Error(`registrar said ${a}/${b}`);
        await Promise.all([client.connectRelay(host.oid), hostEvents.next('connect-relay')]);
      } finally {
        void host.close();
        void client.close();
      }
    };
  });
}

// ---- lobby (Orion format: method:BASE64(JSON)) ----

function encode(method: string, payload: unknown): string {
  return `${method}:${Buffer.from(JSON.stringify(payload)).toString('base64')}`;
}

/** A WebSocket client that can await the next event of a given method. */
class LobbyClient {
  private queue: { method: string; payload: Record<string, unknown> }[] = [];
  private waiters: { method: string; resolve: (payload: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      const colon = text.indexOf(':');
      const method = text.slice(0, colon);
      const payload = JSON.parse(Buffer.from(text.slice(colon + 1), 'base64').toString()) as Record<string, unknown>;
      const index = this.waiters.findIndex((w) => w.method === method);
      if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(payload);
      else this.queue.push({ method, payload });
    });
    ws.on('close', () => {
      for (const w of this.waiters) w.reject(new Error('ws closed'));
      this.waiters = [];
    });
  }

  static open(port: number): Promise<LobbyClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${HOST}:${port}/`, { perMessageDeflate: false });
      const client = new LobbyClient(ws);
      ws.once('error', reject);
      ws.once('open', () => resolve(client));
    });
  }

  next(method: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const index = this.queue.findIndex((m) => m.method === method);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]!.payload);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method}`)), timeoutMs);
      this.waiters.push({
        method,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  send(method: string, payload: unknown): void {
    this.ws.send(encode(method, payload));
  }

  close(): void {
    this.ws.terminate();
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(port: number, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: Record<string, unknown> = {};
        try {
          parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        } catch {
          parsed = { text };
        }
        const status = res.statusCode ?? 0;
        if (status >= 300) reject(new Error(`POST ${path} -> ${status} ${text.slice(0, 120)}`));
        else resolve({ status, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

let lobbyCounter = 0;

/** lobby: host and member connect, create, join, ptp/start, UDP capture, peers start, success, closed. */
function lobbyFlows(params: { http: number; udp: number; concurrency: number; durationMs: number }) {
  return closedLoop(params.concurrency, params.durationMs, async () => {
    const hostUdp = await udpSocket();
    const memberUdp = await udpSocket();
    return async () => {
      const [host, member] = await Promise.all([LobbyClient.open(params.http), LobbyClient.open(params.http)]);
      try {
        const [{ token: hostToken }, { token: memberToken }] = await Promise.all([host.next('client_registered'), member.next('client_registered')]);
        const n = ++lobbyCounter;
        const created = await post(params.http, '/lobbies', { token: hostToken, hostName: 'host', lobbyName: `bench ${process.pid} ${n}`, isPublic: false, maxMembers: 2 });
        const lobbyId = String(created.body.lobbyId);
        await post(params.http, `/lobbies/${lobbyId}/join`, { token: memberToken, peerName: 'member' });
        await post(params.http, `/lobbies/${lobbyId}/ptp/start`, { token: hostToken });
        await Promise.all([host.next('ptpMediation_send'), member.next('ptpMediation_send')]);
        hostUdp.send(encode('ptpMediation_connect', { token: hostToken }), params.udp, HOST);
        memberUdp.send(encode('ptpMediation_connect', { token: memberToken }), params.udp, HOST);
        await Promise.all([host.next('ptpMediation_peersConnection_start'), member.next('ptpMediation_peersConnection_start')]);
        host.send('ptpMediation_peersConnection_success', { token: hostToken });
        member.send('ptpMediation_peersConnection_success', { token: memberToken });
        await Promise.all([host.next('ptpMediation_success'), member.next('ptpMediation_success')]);
        await Promise.all([host.next('lobby_closed'), member.next('lobby_closed')]);
      } finally {
        host.close();
        member.close();
      }
    };
  });
}

// ---- wsrelay: one game server, N phones; measure server->phones fan-out ----

async function wsFanout(params: { port: number; phones: number; durationMs: number; size: number; window: number }) {
  const open = (login: unknown) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://${HOST}:${params.port}/`, { perMessageDeflate: false });
      ws.once('error', reject);
      ws.once('open', () => {
        ws.send(JSON.stringify(login));
        resolve(ws);
      });
    });
  const code = `B${process.pid}${Date.now() % 100000}`;
  const server = await open({ action: 'login_server', server_code: code });
  const connects = new Promise<void>((resolve) => {
    let seen = 0;
    server.on('message', () => {
      if (++seen === params.phones) resolve();
    });
  });
  await new Promise((r) => setTimeout(r, 50));
  const received = new Array<number>(params.phones).fill(0);
  const phones: WebSocket[] = [];
  for (let i = 0; i < params.phones; i++) {
    const phone = await open({ action: 'login_client', server_code: code, client_id: String(i) });
    phone.on('message', () => {
      received[i]!++;
      if (received[i] === minTarget) pump();
    });
    phones.push(phone);
  }
  await Promise.race([connects, new Promise((r) => setTimeout(r, 5000))]);
  const message = JSON.stringify({ t: 'state', data: 'x'.repeat(Math.max(0, params.size - 24)) });
  let sent = 0;
  let minTarget = 0;
  let stopped = false;
  const start = performance.now();
  // Keep at most `window` messages in flight to the slowest phone.
  function pump(): void {
    if (stopped) return;
    const slowest = Math.min(...received);
    while (sent - slowest < params.window) {
      server.send(message);
      sent++;
    }
    minTarget = slowest + Math.floor(params.window / 2);
  }
  pump();
  await new Promise((r) => setTimeout(r, params.durationMs));
  stopped = true;
  const elapsedMs = performance.now() - start;
  const delivered = received.reduce((a, b) => a + b, 0);
  for (const ws of [server, ...phones]) ws.terminate();
  return { sent, delivered, elapsedMs, messagesPerSec: Math.min(...received) / (elapsedMs / 1000), deliveriesPerSec: delivered / (elapsedMs / 1000) };
}

// ---- tcprelay: pairs of clients, A sends MESSAGE frames to B ----

function frame(object: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(object));
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Counts length-prefixed frames on a socket without decoding them. */
function frameCounter(socket: Socket, onFrame: (count: number) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  let count = 0;
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let offset = 0;
    while (pending.length - offset >= 4) {
      const length = pending.readInt32BE(offset);
      if (pending.length - offset - 4 < length) break;
      offset += 4 + length;
      count++;
    }
    pending = pending.subarray(offset);
    onFrame(count);
  });
}

function tcpOpen(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST);
    socket.setNoDelay(true);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

async function tcpFrames(params: { port: number; pairs: number; durationMs: number; size: number; window: number; init: boolean }) {
  const counts = new Array<number>(params.pairs).fill(0);
  const sentCounts = new Array<number>(params.pairs).fill(0);
  const senders: Socket[] = [];
  const all: Socket[] = [];
  let stopped = false;
  let running = false;
  const payload = 'x'.repeat(params.size);
  const frames: Buffer[] = [];
  for (let i = 0; i < params.pairs; i++) {
    const a = await tcpOpen(params.port);
    const b = await tcpOpen(params.port);
    all.push(a, b);
    const idA = `a${process.pid}-${i}`;
    const idB = `b${process.pid}-${i}`;
    const skip = params.init ? 1 : 0; // B's own INIT reply
    let markReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    frameCounter(b, (count) => {
      if (count >= skip) markReady();
      counts[i] = Math.max(0, count - skip);
      if (running && !stopped && sentCounts[i]! - counts[i]! <= params.window / 2) refill(i);
    });
    if (params.init) {
      const readyA = new Promise<void>((resolve) => a.once('data', () => resolve()));
      a.write(frame({ payloadType: 'INIT', source: idA }));
      b.write(frame({ payloadType: 'INIT', source: idB }));
      await Promise.all([ready, readyA]);
    }
    frames.push(frame({ payloadType: 'MESSAGE', destination: idB, payload }));
    senders.push(a);
  }
  function refill(i: number): void {
    const target = counts[i]! + params.window;
    const socket = senders[i]!;
    const f = frames[i]!;
    while (sentCounts[i]! < target) {
      socket.write(f);
      sentCounts[i]!++;
    }
  }
  const start = performance.now();
  running = true;
  for (let i = 0; i < params.pairs; i++) refill(i);
  await new Promise((r) => setTimeout(r, params.durationMs));
  stopped = true;
  const elapsedMs = performance.now() - start;
  const delivered = counts.reduce((a, b) => a + b, 0);
  for (const socket of all) socket.destroy();
  return { delivered, elapsedMs, framesPerSec: delivered / (elapsedMs / 1000) };
}

serve({ norayFlows, lobbyFlows, wsFanout, tcpFrames });
