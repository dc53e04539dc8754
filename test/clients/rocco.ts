import { connect, type Socket } from 'node:net';
import { Inbox } from '../helpers/inbox.js';

/** A frame as a Rocco client writes it: int32 big-endian length, then the UTF-8 JSON. */
export function raw(message: object | string): Buffer {
  const body = Buffer.from(typeof message === 'string' ? message : JSON.stringify(message), 'utf8');
  const header = Buffer.alloc(4);
  header.writeInt32BE(body.length);
  return Buffer.concat([header, body]);
}

export type Received = Record<string, unknown>;

/** A test client acting like a Rocco client over a plain TCP socket; parses what it gets independently of the codec. */
export class RoccoClient {
  readonly closed: Promise<void>;
  private readonly inbox = new Inbox<string>();
  private pending = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const length = this.pending.readInt32BE(0);
        if (this.pending.length < 4 + length) break;
        this.inbox.push(this.pending.subarray(4, 4 + length).toString('utf8'));
        this.pending = this.pending.subarray(4 + length);
      }
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.inbox.close();
        resolve();
      }),
    );
  }

  static open(port: number, host = '127.0.0.1'): Promise<RoccoClient> {
    const socket = connect({ host, port, noDelay: true });
    const client = new RoccoClient(socket);
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(client));
      socket.once('error', reject);
    });
  }

  /** Opens a connection and takes an id (the relay's pick when `source` is undefined). */
  static async init(port: number, source?: string): Promise<{ client: RoccoClient; id: string }> {
    const client = await RoccoClient.open(port);
    const id = await client.init(source);
    return { client, id };
  }

  async init(source?: string): Promise<string> {
    this.send(source === undefined ? { payloadType: 'INIT' } : { payloadType: 'INIT', source });
    const reply = await this.next();
    if (reply.payloadType !== 'INIT' || typeof reply.destination !== 'string') {
      throw new Error(`INIT failed: ${JSON.stringify(reply)}`);
    }
    return reply.destination;
  }

  send(message: object | string): void {
    this.socket.write(raw(message));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  message(destination: string, payload: string): void {
    this.send({ payloadType: 'MESSAGE', destination, payload });
  }

  /** The next frame's JSON text; rejects if the connection closes first. */
  nextText(): Promise<string> {
    return this.inbox.next();
  }

  async next(): Promise<Received> {
    return JSON.parse(await this.nextText()) as Received;
  }

  async take(count: number): Promise<Received[]> {
    return (await this.inbox.take(count)).map((text) => JSON.parse(text) as Received);
  }

  get unread(): number {
    return this.inbox.unread;
  }

  /** Every frame received so far, read or not. */
  get frames(): readonly string[] {
    return this.inbox.items;
  }

  end(): Promise<void> {
    this.socket.end();
    return this.closed;
  }

}
