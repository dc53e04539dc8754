// A client of the noray front (Node): the TCP control channel, the UDP registrar, and the events
// netfox's noray.gd turns into signals. Same bytes and timing as netfox.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIP, type Socket } from 'node:net';
import { encodeCommand, LineDecoder, parseCommand } from '../fronts/noray/codec.js';
import { Emitter } from './events.js';

export const DEFAULT_MAX_LINE_LENGTH = 4096;

export interface NorayClientOptions {
  /** The noray server's IPv4 address (netfox resolves the host name to IPv4 too). */
  readonly host: string;
  /** TCP control port (default 8890). */
  readonly port?: number;
  /** UDP registrar port (default 8809). */
  readonly registrarPort?: number;
  /** Longer lines from the server close the connection. */
  readonly maxLineLength?: number;
  /** How long register, connectNat, connectRelay and echo wait for their reply (default 10 s). */
  readonly timeoutMs?: number;
}

export interface Address {
  readonly address: string;
  readonly port: number;
}

export type NorayEvents = {
  /** NAT punchthrough: the other side's external address; handshake with it from the local port. */
  connect: Address;
  /** Relay: send to the noray host at this port (the relay forwards to the other side). */
  'connect-relay': Address;
  /** The server's `error REASON` line (ours; the original says nothing when a command fails). */
  error: { readonly reason: string };
  echo: { readonly data: string };
  /** The control connection ended; `error` says why when the client ended it on bad input. */
  close: { readonly error?: Error };
};

export class RegisterRemoteError extends Error {
  constructor(
    readonly outcome: 'failed' | 'timeout',
    /** The registrar's reply text when it refused (e.g. `Unknown host pid!`). */
    readonly reply?: string,
  ) {
    super(outcome === 'timeout' ? 'the registrar did not answer in time' : `the registrar refused: ${reply ?? ''}`);
  }
}

export interface RegisterRemoteOptions {
  /** Register this socket's port (it stays open). Without it, a socket bound to any port is used and closed, as netfox does. */
  readonly socket?: UdpSocket;
  /** The address the new socket binds to (default: every interface). */
  readonly bindAddress?: string;
  /** netfox: 8 s. */
  readonly timeoutMs?: number;
  /** netfox: every 100 ms. */
  readonly intervalMs?: number;
}

/** `A.B.C.D:PORT` from a `connect` line; null if it is not one. */
export function parseAddress(data: string): Address | null {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(data);
  const port = Number(match?.[2]);
  return match && port >= 1 && port <= 65535 ? { address: match[1] as string, port } : null;
}

const parsePort = (data: string): number | null => {
  const port = /^\d{1,5}$/.test(data) ? Number(data) : NaN;
  return port >= 1 && port <= 65535 ? port : null;
};

/**
 * One control connection. Commands have no correlation on the wire, so send one at a time and
 * await it (register, connectNat and connectRelay resolve on their reply or reject on `error`).
 */
export class NorayClient extends Emitter<NorayEvents> {
  #pid = '';
  private oidValue = '';
  private localPortValue: number | null = null;
  private closedValue = false;
  private readonly lines: LineDecoder;

  private constructor(
    private readonly socket: Socket,
    private readonly options: NorayClientOptions,
  ) {
    super();
    this.lines = new LineDecoder(options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH);
    socket.on('data', (chunk: Buffer) => this.ingest(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.finish());
  }

  static connect(options: NorayClientOptions): Promise<NorayClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: options.host, port: options.port ?? 8890, noDelay: true, keepAlive: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new NorayClient(socket, options));
      });
      socket.once('error', reject);
    });
  }

  /** The OpenID others connect to (shareable). */
  get oid(): string {
    return this.oidValue;
  }

  /** The PrivateID (a secret: never log it). */
  get pid(): string {
    return this.#pid;
  }

  /** The UDP port registerRemote() registered: bind the handshake and game traffic to it. */
  get localPort(): number | null {
    return this.localPortValue;
  }

  get isClosed(): boolean {
    return this.closedValue;
  }

  /** `register-host`: the server makes an OpenID, or takes `oid` if it is free and valid. */
  async register(oid?: string): Promise<{ oid: string; pid: string }> {
    const reply = this.reply(['set-pid']);
    this.send('register-host', oid);
    await reply;
    return { oid: this.oidValue, pid: this.#pid };
  }

  /**
   * register_remote(): sends the PrivateID to the registrar from one UDP socket every 100 ms for
   * up to 8 s until the registrar replies (datagrams from anywhere else are ignored); `OK`
   * registers that socket's address and port. Rejects with a RegisterRemoteError on any other
   * reply or on timeout.
   */
  async registerRemote(options: RegisterRemoteOptions = {}): Promise<{ localPort: number }> {
    if (this.#pid === '') throw new Error('register() first: the registrar needs the PrivateID');
    const udp = options.socket ?? (await bound(options.bindAddress));
    const registrarPort = this.options.registrarPort ?? 8809;
    const { host } = this.options;
    // Only the registrar's answer counts: a game socket also gets its peers' datagrams.
    const fromRegistrar = (from: RemoteInfo) =>
      from.port === registrarPort && (isIP(host) === 0 || from.address === host || from.address === `::ffff:${host}`);
    const replies: Buffer[] = [];
    const onMessage = (message: Buffer, from: RemoteInfo) => {
      if (fromRegistrar(from)) replies.push(message);
    };
    udp.on('message', onMessage);
    const packet = Buffer.from(this.#pid, 'utf8');
    const intervalMs = options.intervalMs ?? 100;
    try {
      for (let left = options.timeoutMs ?? 8000; left > 0; left -= intervalMs) {
        udp.send(packet, registrarPort, host);
        const reply = replies.shift();
        if (reply !== undefined) {
          const text = reply.subarray(0, 256).toString('utf8');
          if (text !== 'OK') throw new RegisterRemoteError('failed', text);
          this.localPortValue = udp.address().port;
          return { localPort: this.localPortValue };
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
      throw new RegisterRemoteError('timeout');
    } finally {
      udp.off('message', onMessage);
      if (options.socket === undefined) udp.close();
    }
  }

  /** `connect OID`: NAT punchthrough. Resolves with the host's external address (a `connect` event too). */
  async connectNat(oid: string): Promise<Address> {
    const reply = this.reply(['connect']);
    this.send('connect', oid);
    return (await reply) as Address;
  }

  /** `connect-relay OID`: resolves with where to send (the noray host, the relay port). */
  async connectRelay(oid: string): Promise<Address> {
    const reply = this.reply(['connect-relay']);
    this.send('connect-relay', oid);
    return (await reply) as Address;
  }

  async echo(data: string): Promise<string> {
    const reply = this.reply(['echo']);
    this.send('echo', data);
    return (await reply) as string;
  }

  close(): Promise<void> {
    if (this.closedValue) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end();
    return closed;
  }

  private send(command: string, data?: string): void {
    if (this.closedValue) throw new Error('the noray connection is closed');
    this.socket.write(encodeCommand(command, data));
  }

  /** Resolves with the value of the first of `commands` to arrive; rejects on an `error` line, a close or the timeout first. */
  private reply(commands: Array<'set-pid' | 'connect' | 'connect-relay' | 'echo'>): Promise<Address | string> {
    return new Promise((resolve, reject) => {
      const offs: Array<() => void> = [];
      const settle = (action: () => void) => {
        for (const off of offs) off();
        action();
      };
      const timeoutMs = this.options.timeoutMs ?? 10_000;
      const timer = setTimeout(() => settle(() => reject(new Error(`no reply from noray within ${timeoutMs} ms`))), timeoutMs);
      offs.push(() => clearTimeout(timer));
      offs.push(this.on('error', ({ reason }) => settle(() => reject(new Error(`noray: ${reason}`)))));
      offs.push(this.on('close', () => settle(() => reject(new Error('the noray connection closed')))));
      for (const command of commands) {
        if (command === 'set-pid') offs.push(this.onPid(() => settle(() => resolve(this.#pid))));
        if (command === 'connect' || command === 'connect-relay') offs.push(this.on(command, (address) => settle(() => resolve(address))));
        if (command === 'echo') offs.push(this.on('echo', ({ data }) => settle(() => resolve(data))));
      }
    });
  }

  private pidListeners = new Set<() => void>();
  private onPid(listener: () => void): () => void {
    this.pidListeners.add(listener);
    return () => this.pidListeners.delete(listener);
  }

  private ingest(chunk: Buffer): void {
    const result = this.lines.push(chunk);
    for (const line of result.lines) this.line(line);
    if (!result.ok) {
      this.closeError = new Error(`the server sent a line over ${this.options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH} bytes`);
      this.socket.destroy();
    }
  }

  private closeError: Error | undefined;

  private line(line: string): void {
    const { name, data } = parseCommand(line);
    // Like noray.gd: the data is the second space-separated field (ids and addresses have no spaces).
    const field = data.split(' ')[0] ?? '';
    switch (name) {
      case 'set-oid':
        this.oidValue = field;
        return;
      case 'set-pid':
        this.#pid = field;
        for (const listener of [...this.pidListeners]) listener();
        return;
      case 'connect': {
        const address = parseAddress(field);
        if (address !== null) this.emit('connect', address);
        return;
      }
      case 'connect-relay': {
        const port = parsePort(field);
        if (port !== null) this.emit('connect-relay', { address: this.options.host, port });
        return;
      }
      case 'error':
        this.emit('error', { reason: data });
        return;
      case 'echo':
        this.emit('echo', { data });
        return;
      default:
        return; // netfox ignores commands it does not know
    }
  }

  private finish(): void {
    if (this.closedValue) return;
    this.closedValue = true;
    this.emit('close', this.closeError === undefined ? {} : { error: this.closeError });
    this.rejectPending();
  }
}

function bound(address?: string): Promise<UdpSocket> {
  const udp = createSocket('udp4');
  return new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, address, () => {
      udp.off('error', reject);
      resolve(udp);
    });
  });
}
