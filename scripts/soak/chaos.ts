// Misbehaving clients: garbage, floods, slow readers, abrupt disconnects mid-frame, half-open TCP,
// oversize frames. Nothing here is verified beyond "the server copes": their errors are expected
// and not counted; what matters is that the well-behaved clients never notice them.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { HOST, type Ports } from './server.js';
import { rnd, sleep, within, type Tally } from './util.js';

/** Half-open connections held until the end of the run, at most this many at once. */
const MAX_HALF_OPEN = 40;
/** Datagrams per UDP flood burst, sent over about 100 ms. */
const FLOOD_BURST = 100;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: HOST });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the server closes the socket, or after ms (then we close it). */
function closedWithin(socket: Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A client-to-server WebSocket frame (masked), as raw bytes. */
function wsFrame(payload: Buffer, opcode = 1): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = 0x80 | opcode;
  if (length < 126) header[1] = 0x80 | length;
  else if (length < 65536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([header, mask, body]);
}

/** A WebSocket opened by hand on a raw TCP socket (so we can stop reading, or cut a frame in half). */
async function rawWebSocket(port: number): Promise<Socket> {
  const socket = await open(port);
  socket.write(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await within(
    new Promise<void>((resolve, reject) => {
      let text = '';
      const onData = (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          socket.off('data', onData);
          if (text.startsWith('HTTP/1.1 101')) resolve();
          else reject(new Error(`upgrade refused: ${text.slice(0, 40)}`));
        }
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('closed during upgrade')));
    }),
    5000,
    'raw upgrade',
  );
  return socket;
}

function rocco(message: object | string | Buffer, announced?: number): Buffer {
  const body = Buffer.isBuffer(message) ? message : Buffer.from(typeof message === 'string' ? message : JSON.stringify(message));
  const header = Buffer.alloc(4);
  header.writeInt32BE(announced ?? body.length);
  return Buffer.concat([header, body]);
}

function openWs(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${HOST}:${port}/`, { perMessageDeflate: false });
    ws.on('error', () => undefined);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before open')));
  });
}

function wsClosed(ws: WebSocket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, ms);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class Chaos {
  private readonly halfOpen = new Set<Socket>();
  private readonly big = 'x'.repeat(64 * 1024);
  private serial = 0;

  constructor(
    private readonly ports: Ports,
    private readonly tally: Tally,
  ) {}

  private readonly actions: Array<[string, () => Promise<void>]> = [
    ['garbage_tcp', () => this.garbageTcp()],
    ['udp_flood', () => this.udpFlood()],
    ['slow_reader_noray', () => this.slowNoray()],
    ['slow_reader_tcprelay', () => this.slowTcprelay()],
    ['slow_reader_wsrelay', () => this.slowWsrelay()],
    ['slow_reader_lobby', () => this.slowLobby()],
    ['cut_mid_frame', () => this.cutMidFrame()],
    ['half_open', () => this.halfOpenTcp()],
    ['oversize', () => this.oversize()],
    ['bad_input', () => this.badInput()],
  ];

  /** One misbehaving worker: random abuse until told to stop. */
  async worker(stop: () => boolean): Promise<void> {
    while (!stop()) {
      const [kind, action] = this.actions[rnd(this.actions.length)] as [string, () => Promise<void>];
      try {
        await within(action(), 15_000, kind);
      } catch {
        // Expected: the server is allowed (and supposed) to cut misbehaving clients off.
      }
      this.tally.abused(kind);
      await sleep(20 + rnd(80));
    }
  }

  /** Destroys every held half-open connection. */
  release(): void {
    for (const socket of this.halfOpen) socket.destroy();
    this.halfOpen.clear();
  }

  private tcpPorts(): number[] {
    const p = this.ports;
    return [p.control, p.lobbyHttp, p.ws, p.tcp, p.ops];
  }

  private async garbageTcp(): Promise<void> {
    const port = this.tcpPorts()[rnd(5)] as number;
    const socket = await open(port);
    socket.on('data', () => undefined);
    socket.write(randomBytes(1 + rnd(4096)));
    await closedWithin(socket, 500);
  }

  private async udpFlood(): Promise<void> {
    const p = this.ports;
    const targets = [p.registrar, p.lobbyUdp, p.relay[rnd(p.relay.length)] as number];
    const port = targets[rnd(targets.length)] as number;
    const udp = createSocket('udp4');
    udp.on('error', () => undefined);
    await new Promise<void>((resolve) => udp.bind(0, HOST, () => resolve()));
    try {
      for (let i = 0; i < FLOOD_BURST; i++) {
        const kind = rnd(3);
        const payload =
          kind === 0 ? randomBytes(1 + rnd(1400)) : kind === 1 ? Buffer.from('x'.repeat(128)) : Buffer.from(`ptpMediation_connect:${randomBytes(30).toString('base64')}`);
        udp.send(payload, port, HOST);
        if (i % 10 === 9) await sleep(10);
      }
    } finally {
      udp.close();
    }
  }

  /** Asks for lots of output (echo) and never reads it. */
  private async slowNoray(): Promise<void> {
    const socket = await open(this.ports.control);
    socket.pause();
    const line = `echo ${'y'.repeat(3000)}\n`;
    socket.write('register-host\n');
    for (let round = 0; round < 6 && !socket.destroyed; round++) {
      socket.write(line.repeat(400));
      await sleep(1000);
    }
    socket.destroy();
  }

  /** A Rocco client that never reads, and another that sends it 64 KiB frames. */
  private async slowTcprelay(): Promise<void> {
    const id = `slow-${process.pid}-${this.serial++}`;
    const sink = await open(this.ports.tcp);
    sink.pause();
    sink.write(rocco({ payloadType: 'INIT', source: id }));
    const sender = await open(this.ports.tcp);
    sender.on('data', () => undefined);
    sender.write(rocco({ payloadType: 'INIT' }));
    try {
      for (let i = 0; i < 120 && !sender.destroyed; i++) {
        sender.write(rocco({ payloadType: 'MESSAGE', destination: id, payload: this.big }));
        if (i % 10 === 9) await sleep(50);
      }
      await sleep(500);
    } finally {
      sink.destroy();
      sender.destroy();
    }
  }

  /** A phone that never reads while its game server broadcasts 64 KiB messages. */
  private async slowWsrelay(): Promise<void> {
    const code = `chaos-${process.pid}-${this.serial++}`;
    const server = await openWs(this.ports.ws);
    try {
      server.send(JSON.stringify({ action: 'login_server', server_code: code }));
      await sleep(20);
      const phone = await rawWebSocket(this.ports.ws);
      phone.write(wsFrame(Buffer.from(JSON.stringify({ action: 'login_client', server_code: code, client_id: 'slow' }))));
      phone.pause();
      try {
        for (let i = 0; i < 120 && server.readyState === WebSocket.OPEN; i++) {
          server.send(this.big);
          if (i % 10 === 9) await sleep(50);
        }
        await sleep(500);
      } finally {
        phone.destroy();
      }
    } finally {
      server.terminate();
    }
  }

  /** A lobby client that never reads, and lots of HTTP asking for lobby lists meanwhile. */
  private async slowLobby(): Promise<void> {
    const socket = await rawWebSocket(this.ports.lobbyHttp);
    socket.pause();
    for (let i = 0; i < 5; i++) await fetch(`http://${HOST}:${this.ports.lobbyHttp}/lobbies`).then((r) => r.text());
    await sleep(500);
    socket.destroy();
  }

  /** Connects, sends half a line or frame, and disconnects abruptly. */
  private async cutMidFrame(): Promise<void> {
    const p = this.ports;
    switch (rnd(5)) {
      case 0: {
        const socket = await open(p.control);
        socket.write('register-ho');
        await sleep(rnd(50));
        socket.destroy();
        return;
      }
      case 1: {
        const socket = await open(p.tcp);
        socket.write(rocco({ payloadType: 'INIT' }));
        socket.write(rocco('{"payloadType":"MESS', 100));
        await sleep(rnd(50));
        socket.destroy();
        return;
      }
      case 2: {
        const socket = await rawWebSocket(p.ws);
        socket.write(wsFrame(Buffer.from('{"action":"login_server","server_code":"cut"}')).subarray(0, 20));
        await sleep(rnd(50));
        socket.destroy();
        return;
      }
      case 3: {
        const socket = await rawWebSocket(p.lobbyHttp);
        socket.write(wsFrame(Buffer.from('lobby_messaging_send:e30=')).subarray(0, 10));
        await sleep(rnd(50));
        socket.destroy();
        return;
      }
      default: {
        const socket = await open(p.lobbyHttp);
        socket.write(`POST /lobbies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"token":"`);
        await sleep(rnd(50));
        socket.destroy();
      }
    }
  }

  /** Connects, sends a partial frame and stays silent (held until the end of the run, or until the server cuts it). */
  private async halfOpenTcp(): Promise<void> {
    if (this.halfOpen.size >= MAX_HALF_OPEN) return;
    const p = this.ports;
    let socket: Socket;
    switch (rnd(5)) {
      case 0:
        socket = await open(p.control);
        socket.write('register-host');
        break;
      case 1:
        socket = await open(p.tcp);
        socket.write(rocco('{"payloadType":"INIT"}', 50));
        break;
      case 2:
        socket = await rawWebSocket(p.ws);
        socket.write(wsFrame(Buffer.from('{"action":"login_server"}')).subarray(0, 8));
        break;
      case 3:
        socket = await open(p.lobbyHttp);
        socket.write('GET /lobbies HTTP/1.1\r\nHost: x\r\n');
        break;
      default:
        socket = await open(p.ws);
        socket.write('GET / HTTP/1.1\r\nUpgrade: websocket\r\n');
    }
    socket.on('data', () => undefined);
    this.halfOpen.add(socket);
    socket.once('close', () => this.halfOpen.delete(socket));
  }

  private async oversize(): Promise<void> {
    const p = this.ports;
    switch (rnd(4)) {
      case 0: {
        const socket = await open(p.control);
        socket.on('data', () => undefined);
        socket.write(`echo ${'z'.repeat(8000)}`);
        await closedWithin(socket, 3000);
        return;
      }
      case 1: {
        const socket = await open(p.tcp);
        socket.on('data', () => undefined);
        socket.write(rocco(Buffer.alloc(1000, 0x20), 2 * 1024 * 1024));
        await closedWithin(socket, 3000);
        return;
      }
      case 2: {
        const ws = await openWs(p.ws);
        ws.send(JSON.stringify({ action: 'login_server', server_code: `big-${process.pid}-${this.serial++}` }));
        ws.send('w'.repeat(1024 * 1024 + 10));
        await wsClosed(ws, 3000);
        return;
      }
      default: {
        const ws = await openWs(p.lobbyHttp);
        ws.send(`lobby_messaging_send:${'A'.repeat(70 * 1024)}`);
        await wsClosed(ws, 3000);
      }
    }
  }

  /** Well-formed transport, nonsense content. */
  private async badInput(): Promise<void> {
    const p = this.ports;
    switch (rnd(5)) {
      case 0: {
        const ws = await openWs(p.ws);
        ws.send(rnd(2) === 0 ? 'not json' : JSON.stringify({ action: 'login_client', server_code: 'nobody-here', client_id: '1' }));
        await wsClosed(ws, 2000);
        return;
      }
      case 1: {
        // A phone sending invalid JSON after login is cut off; its server gets `disconnect`.
        const code = `bad-${process.pid}-${this.serial++}`;
        const server = await openWs(p.ws);
        server.on('message', () => undefined);
        server.send(JSON.stringify({ action: 'login_server', server_code: code }));
        await sleep(20);
        const phone = await openWs(p.ws);
        phone.send(JSON.stringify({ action: 'login_client', server_code: code, client_id: 'x' }));
        phone.send('{broken');
        await wsClosed(phone, 2000);
        server.terminate();
        return;
      }
      case 2: {
        const socket = await open(p.tcp);
        socket.on('data', () => undefined);
        socket.write(rocco(rnd(2) === 0 ? '[1,2,3]' : '{"payloadType":"DANCE"}'));
        await closedWithin(socket, 2000);
        return;
      }
      case 3: {
        const ws = await openWs(p.lobbyHttp);
        ws.on('message', () => undefined);
        for (let i = 0; i < 20; i++) ws.send(randomBytes(1 + rnd(200)).toString('latin1'));
        await sleep(100);
        ws.terminate();
        return;
      }
      default: {
        const bodies = ['{', '{"token":"nope","hostName":"a","lobbyName":"b","isPublic":true,"maxMembers":2}', '[]'];
        const body = bodies[rnd(bodies.length)] as string;
        const response = await fetch(`http://${HOST}:${p.lobbyHttp}/lobbies`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        await response.text();
        const registrar = createSocket('udp4');
        registrar.on('error', () => undefined);
        registrar.send('unknown-pid', p.registrar, HOST, () => registrar.close());
      }
    }
  }
}
