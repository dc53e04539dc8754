import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { Relay } from './relay.js';

/** One bound relay socket and the relay currently using it (null while free). */
export interface RelaySlot {
  readonly socket: Socket;
  readonly port: number;
  relay: Relay | null;
}

export interface BindFailure {
  readonly port: number;
  readonly error: string;
}

export interface PortPoolOptions {
  readonly host: string;
  readonly ports: readonly number[];
  readonly socketBufferBytes: number;
  /** Called for every datagram on every slot; the one function on the relay hot path. */
  readonly onDatagram: (slot: RelaySlot, message: Buffer, from: RemoteInfo) => void;
  readonly onSocketError: (slot: RelaySlot, error: Error) => void;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * dgram resolves the target of every send() through dns.lookup, which for an IP literal still
 * costs a call chain and a process.nextTick per datagram. The relay only ever sends to addresses
 * its own sockets reported, so answer IP literals at once; anything else (a host name given as
 * the bind address) goes to the resolver as before.
 */
function literalLookup(address: string, options: LookupOneOptions, callback: LookupCallback): void {
  const version = isIP(address);
  if (version !== 0) callback(null, address, version);
  else dnsLookup(address, options, callback);
}

/** Binds every relay port up front and hands out free ones; acquire and release are O(1). */
export class PortPool {
  private readonly slots: RelaySlot[] = [];
  private readonly free: RelaySlot[] = [];
  readonly failures: BindFailure[] = [];

  constructor(private readonly options: PortPoolOptions) {}

  get family(): 'udp4' | 'udp6' {
    return this.options.host.includes(':') ? 'udp6' : 'udp4';
  }

  /** Binds every configured port; ports that fail are recorded in `failures` and skipped. */
  async bind(): Promise<void> {
    const results = await Promise.allSettled(this.options.ports.map((port) => this.bindOne(port)));
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') {
        this.slots.push(result.value);
      } else {
        this.failures.push({ port: this.options.ports[index] ?? 0, error: String((result.reason as Error).message) });
      }
    });
    // Hand out low ports first: easier to read in logs and firewall rules.
    this.free.push(...[...this.slots].sort((a, b) => b.port - a.port));
  }

  private bindOne(port: number): Promise<RelaySlot> {
    const socket = createSocket({
      type: this.family,
      recvBufferSize: this.options.socketBufferBytes,
      sendBufferSize: this.options.socketBufferBytes,
      lookup: literalLookup,
    });
    return new Promise((resolve, reject) => {
      socket.once('error', (error) => {
        socket.close();
        reject(error);
      });
      socket.bind(port, this.options.host, () => {
        socket.removeAllListeners('error');
        const slot: RelaySlot = { socket, port: socket.address().port, relay: null };
        const { onDatagram, onSocketError } = this.options;
        socket.on('message', (message, from) => onDatagram(slot, message, from));
        socket.on('error', (error) => onSocketError(slot, error));
        resolve(slot);
      });
    });
  }

  acquire(): RelaySlot | undefined {
    return this.free.pop();
  }

  release(slot: RelaySlot): void {
    slot.relay = null;
    this.free.push(slot);
  }

  get boundPorts(): number[] {
    return this.slots.map((slot) => slot.port);
  }

  get freeCount(): number {
    return this.free.length;
  }

  get size(): number {
    return this.slots.length;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            try {
              slot.socket.close(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    );
    this.slots.length = 0;
    this.free.length = 0;
  }
}
