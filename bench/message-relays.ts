/**
 * Throughput of the message relays over loopback, relay and clients in one process:
 * - wsrelay: one game server fans messages out to 50 phones (messages/s sent by the server, and
 *   deliveries/s = messages x phones);
 * - tcprelay: pairs of Rocco clients send MESSAGE frames to each other (frames/s delivered).
 * Senders go in waves and wait for the last receiver, so the relay's send buffers stay bounded.
 *
 *   npx tsx bench/message-relays.ts [wsMessages=20000] [tcpFrames=200000]
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { App } from '../src/app.js';
import { configWith } from '../src/config/load.js';

const wsMessages = Number(process.argv[2] ?? 20_000);
const tcpFrames = Number(process.argv[3] ?? 200_000);
const PHONES = 50;
const WAVE = 500;

const app = new App({
  config: configWith({
    logLevel: 'silent',
    httpPort: null,
    socketPort: null,
    udpRegistrarPort: null,
    udpRelayPorts: null,
    lobbyHttpPort: null,
    lobbyUdpPort: null,
    wsrelayHost: '127.0.0.1',
    wsrelayPort: 0,
    tcprelayHost: '127.0.0.1',
    tcprelayPort: 0,
  }),
  logger: pino({ level: 'silent' }),
  processMetrics: false,
});
await app.start();
const ports = app.ports();

async function openWs(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  await once(ws, 'open');
  return ws;
}

async function benchWs(): Promise<void> {
  const port = ports.wsrelay?.ws as number;
  const server = await openWs(port);
  server.send(JSON.stringify({ action: 'login_server', server_code: 'BENCH' }));
  let connected = 0;
  const allIn = new Promise<void>((resolve) =>
    server.on('message', () => {
      if (++connected === PHONES) resolve();
    }),
  );
  const counts: number[] = [];
  const phones: WebSocket[] = [];
  let waiters: Array<() => void> = [];
  let target = 0;
  const check = () => {
    if (counts.every((c) => c >= target)) for (const w of waiters.splice(0)) w();
  };
  for (let i = 0; i < PHONES; i++) {
    const phone = await openWs(port);
    counts.push(0);
    phone.on('message', () => {
      counts[i]!++;
      if (counts[i] === target) check();
    });
    phone.send(JSON.stringify({ action: 'login_client', server_code: 'BENCH', client_id: String(i) }));
    phones.push(phone);
  }
  await allIn;
  const message = JSON.stringify({ type: 'state', cars: [{ x: 1.25, y: -3.5, speed: 42 }], t: 123456789 });
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < wsMessages; ) {
    const wave = Math.min(WAVE, wsMessages - sent);
    for (let i = 0; i < wave; i++) server.send(message);
    sent += wave;
    target = sent;
    await new Promise<void>((resolve) => {
      waiters.push(resolve);
      check();
    });
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `wsrelay fan-out: ${wsMessages} messages of ${message.length} B to ${PHONES} phones in ${seconds.toFixed(2)} s = ` +
      `${Math.round(wsMessages / seconds)} messages/s, ${Math.round((wsMessages * PHONES) / seconds)} deliveries/s`,
  );
  for (const ws of [server, ...phones]) ws.terminate();
  waiters = [];
}

function frame(message: object): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(body.length);
  body.copy(out, 4);
  return out;
}

interface TcpClient {
  socket: Socket;
  received: number;
  onCount: (() => void) | null;
}

async function openTcp(port: number, id: string): Promise<TcpClient> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  await once(socket, 'connect');
  const client: TcpClient = { socket, received: 0, onCount: null };
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 4) {
      const length = pending.readInt32BE(at);
      if (pending.length - at < 4 + length) break;
      at += 4 + length;
      client.received++;
    }
    pending = pending.subarray(at);
    client.onCount?.();
  });
  socket.write(frame({ payloadType: 'INIT', source: id }));
  await new Promise<void>((resolve) => (client.onCount = resolve));
  client.received = 0;
  client.onCount = null;
  return client;
}

async function benchTcp(): Promise<void> {
  const port = ports.tcprelay?.tcp as number;
  const pairs = 10;
  const perSender = Math.ceil(tcpFrames / (pairs * 2));
  const clients: TcpClient[] = [];
  for (let i = 0; i < pairs * 2; i++) clients.push(await openTcp(port, `c${i}`));
  const batches = clients.map((_, i) =>
    frame({ payloadType: 'MESSAGE', destination: `c${i ^ 1}`, payload: 'x'.repeat(64) }),
  );
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < perSender; ) {
    const wave = Math.min(WAVE, perSender - sent);
    for (const [i, client] of clients.entries()) client.socket.write(Buffer.concat(Array(wave).fill(batches[i])));
    sent += wave;
    await Promise.all(
      clients.map(
        (client) =>
          new Promise<void>((resolve) => {
            const done = () => {
              if (client.received >= sent) {
                client.onCount = null;
                resolve();
              }
            };
            client.onCount = done;
            done();
          }),
      ),
    );
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const total = perSender * clients.length;
  console.log(
    `tcprelay: ${total} MESSAGE frames (64 B payload) between ${pairs} pairs in ${seconds.toFixed(2)} s = ` +
      `${Math.round(total / seconds)} frames/s`,
  );
  for (const client of clients) client.socket.destroy();
}

await benchWs();
await benchTcp();
await app.stop();
