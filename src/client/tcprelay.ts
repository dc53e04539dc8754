// A client of the tcprelay front (Rocco's protocol, Node): length-prefixed JSON frames over TCP.
// Reads with the server's own bounded frame decoder.
import { connect, type Socket } from 'node:net';
import { DecodeError, encodeFrame, FrameDecoder, frame, type Frame } from '../fronts/tcprelay/codec.js';
import { Emitter } from './events.js';

export const DEFAULT_MAX_FRAME_SIZE = 1024 * 1024;

export interface TcpRelayOptions {
  readonly host: string;
  readonly port: number;
  /** A larger announced frame closes the connection without buffering it. */
  readonly maxFrameSize?: number;
  /** How long init() waits for the relay's answer (default 10 s). */
  readonly timeoutMs?: number;
}

export interface RelayedMessage {
  readonly source: string;
  readonly destination: string;
  readonly payload: string;
}

export type TcpRelayEvents = {
  /** A MESSAGE from another id. */
  message: RelayedMessage;
  /** An ERROR frame: from the relay (unknown destination, not initialized, id taken) or from a peer. */
  error: { readonly source?: string; readonly destination?: string; readonly payload?: string };
  /** The connection ended; `error` says why when the client ended it on a broken frame. */
  close: { readonly error?: Error };
};

export class TcpRelayClient extends Emitter<TcpRelayEvents> {
  private idValue: string | null = null;
  private closedValue = false;
  private closeError: Error | undefined;
  private readonly decoder: FrameDecoder;
  private initWaiter: ((frame: Frame) => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly options: TcpRelayOptions,
  ) {
    super();
    this.decoder = new FrameDecoder({ maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE });
    socket.on('data', (chunk: Buffer) => this.ingest(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.finish());
  }

  static connect(options: TcpRelayOptions): Promise<TcpRelayClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: options.host, port: options.port, noDelay: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new TcpRelayClient(socket, options));
      });
      socket.once('error', reject);
    });
  }

  /** Connects and takes an id (the relay's pick without `id`). */
  static async open(options: TcpRelayOptions & { readonly id?: string }): Promise<TcpRelayClient> {
    const client = await TcpRelayClient.connect(options);
    try {
      await client.init(options.id);
    } catch (error) {
      client.socket.destroy();
      throw error;
    }
    return client;
  }

  /** The id this connection holds, once init() resolved. */
  get id(): string | null {
    return this.idValue;
  }

  get isClosed(): boolean {
    return this.closedValue;
  }

  /** INIT: takes `id` (rejects if it is taken) or one the relay picks; resolves with the id. */
  init(id?: string): Promise<string> {
    if (this.initWaiter !== null) return Promise.reject(new Error('an INIT is already under way'));
    const reply = new Promise<string>((resolve, reject) => {
      const timeoutMs = this.options.timeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        offClose();
        this.initWaiter = null;
        reject(new Error(`no answer to INIT within ${timeoutMs} ms`));
      }, timeoutMs);
      const offClose = this.on('close', () => {
        clearTimeout(timer);
        this.initWaiter = null;
        reject(new Error('the relay connection closed during INIT'));
      });
      this.initWaiter = (answer) => {
        clearTimeout(timer);
        offClose();
        this.initWaiter = null;
        if (answer.payloadType === 'INIT' && answer.destination !== undefined) {
          this.idValue = answer.destination;
          resolve(answer.destination);
        } else {
          reject(new Error(`INIT refused: ${answer.payload ?? 'no reason given'}`));
        }
      };
    });
    this.write(frame('INIT', id));
    return reply;
  }

  /** A MESSAGE to `destination`; the relay stamps this connection's id as its source. */
  send(destination: string, payload: string): void {
    this.write(frame('MESSAGE', undefined, destination, payload));
  }

  /** An ERROR frame to `destination` (Rocco clients use them to tell a peer something failed). */
  sendError(destination: string, payload?: string): void {
    this.write(frame('ERROR', undefined, destination, payload));
  }

  /** CLOSE: frees the id; the connection stays open and may INIT again. */
  release(): void {
    this.write(frame('CLOSE'));
    this.idValue = null;
  }

  /** Ends the connection (which frees the id). */
  end(): Promise<void> {
    if (this.closedValue) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end();
    return closed;
  }

  private write(value: Frame): void {
    if (this.closedValue) throw new Error('the relay connection is closed');
    this.socket.write(encodeFrame(value));
  }

  private ingest(chunk: Buffer): void {
    const { frames, error } = this.decoder.push(chunk);
    for (const received of frames) this.frame(received);
    if (error instanceof DecodeError) {
      this.closeError = new Error(`broken frame from the relay: ${error.message}`);
      this.socket.destroy();
    }
  }

  private frame(received: Frame): void {
    if (this.initWaiter !== null && (received.payloadType === 'INIT' || (received.payloadType === 'ERROR' && received.source === undefined))) {
      this.initWaiter(received);
      return;
    }
    switch (received.payloadType) {
      case 'MESSAGE':
        this.emit('message', { source: received.source ?? '', destination: received.destination ?? '', payload: received.payload ?? '' });
        return;
      case 'ERROR': {
        const { source, destination, payload } = received;
        this.emit('error', { ...(source === undefined ? {} : { source }), ...(destination === undefined ? {} : { destination }), ...(payload === undefined ? {} : { payload }) });
        return;
      }
      default:
        return;
    }
  }

  private finish(): void {
    if (this.closedValue) return;
    this.closedValue = true;
    this.emit('close', this.closeError === undefined ? {} : { error: this.closeError });
    this.rejectPending();
  }
}
