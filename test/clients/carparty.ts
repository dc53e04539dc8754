import { WebSocket, type ClientOptions } from 'ws';
import { Inbox } from '../helpers/inbox.js';

export interface Closed {
  code: number;
  reason: string;
}

/** A test WebSocket peer acting like a CarParty game server or phone: queues what it receives. */
export class WsPeer {
  readonly binaries: Buffer[] = [];
  readonly closed: Promise<Closed>;
  private readonly inbox = new Inbox<string>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaries.push(data as Buffer);
      else this.inbox.push((data as Buffer).toString('utf8'));
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.inbox.close();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  static open(port: number, path = '/', options: ClientOptions = {}, host = '127.0.0.1'): Promise<WsPeer> {
    const ws = new WebSocket(`ws://${host}:${port}${path}`, { perMessageDeflate: false, ...options });
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
  next(): Promise<string> {
    return this.inbox.next();
  }

  async nextJson(): Promise<unknown> {
    return JSON.parse(await this.next());
  }

  /** Reads `count` messages. */
  take(count: number): Promise<string[]> {
    return this.inbox.take(count);
  }

  /** Messages received but not read yet. */
  get unread(): number {
    return this.inbox.unread;
  }

  /** Every text message received so far, read or not. */
  get received(): readonly string[] {
    return this.inbox.items;
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }

}

export async function loginServer(port: number, code: string): Promise<WsPeer> {
  const server = await WsPeer.open(port);
  server.send({ action: 'login_server', server_code: code });
  return server;
}

/** Logs a phone in and waits until its server has been told. */
export async function loginClient(port: number, server: WsPeer, code: string, id: string, localAddress?: string): Promise<WsPeer> {
  const client = await WsPeer.open(port, '/', localAddress === undefined ? {} : { localAddress });
  client.send({ action: 'login_client', server_code: code, client_id: id });
  const notice = await server.next();
  if (notice !== JSON.stringify({ action: 'connect', client_id: id })) throw new Error(`unexpected ${notice}`);
  return client;
}
