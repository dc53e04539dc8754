// A test client that behaves like the Godot netfox.noray client (noray.gd, packet-handshake.gd):
// same bytes on the wire, same order, same timing.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';

export interface NorayCommandLine {
  command: string;
  data: string;
}

/** The TCP side of noray.gd: `COMMAND DATA\n` out; splits incoming text on \n. */
export class NetfoxClient {
  oid = '';
  pid = '';
  localPort = -1;
  private buffer = '';
  private readonly received: NorayCommandLine[] = [];
  private readonly waiters: Array<() => void> = [];
  closed = false;

  private constructor(
    readonly socket: Socket,
    readonly host: string,
    /** The address the game's UDP sockets bind to (another loopback address stands for another IP). */
    readonly localAddress: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.ingest(text));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1', localAddress = '127.0.0.1'): Promise<NetfoxClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host, noDelay: true });
      socket.once('connect', () => resolve(new NetfoxClient(socket, host, localAddress)));
      socket.once('error', reject);
    });
  }

  /** Like NorayProtocolHandler: split on \n; command is the first space-separated field, data the second. */
  private ingest(text: string): void {
    this.buffer += text;
    let newline = this.buffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line !== '') {
        const parts = line.split(' ');
        const entry = { command: parts[0] ?? '', data: parts[1] ?? '' };
        if (entry.command === 'set-oid') this.oid = entry.data;
        if (entry.command === 'set-pid') this.pid = entry.data;
        this.received.push(entry);
      }
      newline = this.buffer.indexOf('\n');
    }
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Raw text as the server sent it, for byte-level assertions. */
  get rawLines(): NorayCommandLine[] {
    return [...this.received];
  }

  /** Resolves with the next received line with this command (consuming it and everything before it). */
  async next(command: string, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex((entry) => entry.command === command);
      if (index >= 0) {
        const [entry] = this.received.splice(0, index + 1).slice(-1);
        return entry?.data ?? '';
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${command}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${command}; got ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection not closed');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(raw: string | Buffer): void {
    this.socket.write(raw);
  }

  putCommand(command: string, data?: string): void {
    this.socket.write(data === undefined ? `${command}\n` : `${command} ${data}\n`);
  }

  async registerHost(): Promise<void> {
    this.putCommand('register-host');
    await this.next('set-pid');
  }

  /**
   * register_remote(): bind UDP to any port, send the pid every 100 ms for up to 8 s; the first
   * reply decides (OK → success, anything else → failure). Leaves localPort set on success.
   */
  async registerRemote(registrarPort: number, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<'OK' | 'FAILED' | 'TIMEOUT'> {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, this.localAddress, resolve));
    const replies: Buffer[] = [];
    udp.on('message', (message) => replies.push(message));
    const packet = Buffer.from(this.pid, 'utf8');
    let timeout = options.timeoutMs ?? 8000;
    const interval = options.intervalMs ?? 100;
    let result: 'OK' | 'FAILED' | 'TIMEOUT' = 'TIMEOUT';
    try {
      while (timeout > 0) {
        udp.send(packet, registrarPort, this.host);
        const reply = replies.shift();
        if (reply !== undefined) {
          if (reply.toString('utf8') === 'OK') {
            this.localPort = udp.address().port;
            result = 'OK';
          } else {
            result = 'FAILED';
          }
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, interval));
        timeout -= interval;
      }
    } finally {
      udp.close();
    }
    return result;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A UDP socket bound to the registered local port, as the game binds it for the handshake and ENet. */
export async function bindLocalPort(port: number, address = '127.0.0.1'): Promise<UdpSocket> {
  const udp = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, address, () => resolve());
  });
  return udp;
}

/**
 * PacketHandshake.over_packet_peer: every 100 ms send `$` + r/- (read from peer) + w + x/- (peer has
 * read us); success once we have x and receive a status with x. Fails after timeoutMs.
 */
export async function handshakeOverPacketPeer(
  udp: UdpSocket,
  address: string,
  port: number,
  timeoutMs = 8000,
): Promise<{ ok: boolean; from: RemoteInfo[] }> {
  let read = false;
  let peerRead = false;
  let peerSaysX = false;
  const from: RemoteInfo[] = [];
  const onMessage = (message: Buffer, info: RemoteInfo) => {
    const status = message.toString('ascii');
    if (!status.startsWith('$')) return;
    from.push(info);
    read = true;
    if (status.includes('r')) peerRead = true;
    if (status.includes('x')) peerSaysX = true;
  };
  udp.on('message', onMessage);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const status = `$${read ? 'r' : '-'}w${peerRead ? 'x' : '-'}`;
      udp.send(status, port, address);
      if (peerRead && peerSaysX) return { ok: true, from };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { ok: false, from };
  } finally {
    udp.off('message', onMessage);
  }
}

/** PacketHandshake.over_enet for a Godot host: it cannot read raw packets, so it sends `$rwx` every 100 ms. */
export function blastHostHandshake(udp: UdpSocket, address: string, port: number): { stop(): void } {
  const timer = setInterval(() => udp.send('$rwx', port, address), 100);
  udp.send('$rwx', port, address);
  return { stop: () => clearInterval(timer) };
}
