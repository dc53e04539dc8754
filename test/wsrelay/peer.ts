import { WebSocket, type ClientOptions } from 'ws';

export interface Closed {
  code: number;
  reason: string;
}

/** A test WebSocket peer acting like a CarParty game server or phone: queues what it receives. */
export class WsPeer {
  readonly received: string[] = [];
  readonly binaries: Buffer[] = [];
  readonly closed: Promise<Closed>;
  private readonly waiters: Array<() => void> = [];
  private read = 0;
  private isClosed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaries.push(data as Buffer);
      else this.received.push((data as Buffer).toString('utf8'));
      this.wake();
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  static open(port: number, path = '/', options: ClientOptions = {}): Promise<WsPeer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: false, ...options });
    const peer = new WsPeer(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(peer));
      ws.once('error', reject);
    });
  }

  send(message: string | object | Buffer, binary = false): void {
    const data = typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message);
    this.ws.send(data, { binary });
  }

  /** The next text message not yet read; rejects if the connection closes first. */
  async next(): Promise<string> {
    while (this.read >= this.received.length) {
      if (this.isClosed) throw new Error(`closed while waiting for message #${this.read}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.received[this.read++] as string;
  }

  async nextJson(): Promise<unknown> {
    return JSON.parse(await this.next());
  }

  /** Reads `count` messages. */
  async take(count: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next());
    return out;
  }

  /** Messages received but not read yet. */
  get unread(): number {
    return this.received.length - this.read;
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export async function loginServer(port: number, code: string): Promise<WsPeer> {
  const server = await WsPeer.open(port);
  server.send({ action: 'login_server', server_code: code });
  return server;
}

/** Logs a phone in and waits until its server has been told. */
export async function loginClient(port: number, server: WsPeer, code: string, id: string): Promise<WsPeer> {
  const client = await WsPeer.open(port);
  client.send({ action: 'login_client', server_code: code, client_id: id });
  const notice = await server.next();
  if (notice !== JSON.stringify({ action: 'connect', client_id: id })) throw new Error(`unexpected ${notice}`);
  return client;
}
