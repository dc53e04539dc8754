import { connect, type Socket } from 'node:net';

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
  readonly frames: string[] = [];
  readonly closed: Promise<void>;
  private pending = Buffer.alloc(0);
  private read = 0;
  private isClosed = false;
  private readonly waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const length = this.pending.readInt32BE(0);
        if (this.pending.length < 4 + length) break;
        this.frames.push(this.pending.subarray(4, 4 + length).toString('utf8'));
        this.pending = this.pending.subarray(4 + length);
      }
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RoccoClient> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
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
  async nextText(): Promise<string> {
    while (this.read >= this.frames.length) {
      if (this.isClosed) throw new Error(`closed while waiting for frame #${this.read}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.frames[this.read++] as string;
  }

  async next(): Promise<Received> {
    return JSON.parse(await this.nextText()) as Received;
  }

  async take(count: number): Promise<Received[]> {
    const out: Received[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next());
    return out;
  }

  get unread(): number {
    return this.frames.length - this.read;
  }

  end(): Promise<void> {
    this.socket.end();
    return this.closed;
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
