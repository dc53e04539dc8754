import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { countOpenFiles, descriptorReserve, isDescriptorExhaustion } from '../open-files.js';
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
  /** The errno code (EADDRINUSE, EACCES, EMFILE...) when the error had one. */
  readonly code?: string;
}

/** Binds in flight at once: fast, yet stops soon after descriptors run out. */
const BIND_BATCH = 128;

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

  /**
   * Binds every configured port; ports that fail are recorded in `failures` and skipped. When
   * descriptors run out (EMFILE/ENFILE) binding stops there: the ports not tried are not failures
   * of their own, and a reserve of the sockets just bound is closed again so the process keeps
   * descriptors for its other listeners and connections (see open-files.ts).
   */
  async bind(): Promise<void> {
    const { ports } = this.options;
    for (let start = 0; start < ports.length; start += BIND_BATCH) {
      const batch = ports.slice(start, start + BIND_BATCH);
      const results = await Promise.allSettled(batch.map((port) => this.bindOne(port)));
      let exhausted = false;
      results.forEach((result, index) => {
        if (result.status === 'fulfilled') {
          this.slots.push(result.value);
          return;
        }
        const error = result.reason as NodeJS.ErrnoException;
        exhausted ||= isDescriptorExhaustion(error);
        this.failures.push({
          port: batch[index] ?? 0,
          error: String(error.message),
          ...(error.code === undefined ? {} : { code: error.code }),
        });
      });
      if (exhausted) {
        await this.giveBackReserve();
        break;
      }
    }
    // Hand out low ports first: easier to read in logs and firewall rules.
    this.free.push(...[...this.slots].sort((a, b) => b.port - a.port));
  }

  /** Out of descriptors: every one is in use now, so the limit is about the open count. */
  private async giveBackReserve(): Promise<void> {
    const limit = countOpenFiles() ?? this.slots.length;
    const count = Math.min(this.slots.length, descriptorReserve(limit));
    this.slots.sort((a, b) => a.port - b.port);
    const released = this.slots.splice(this.slots.length - count, count);
    await Promise.all(released.map((slot) => closeSocket(slot.socket)));
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
      // exclusive: a relay port is this process's own. In a node:cluster worker (noray --workers)
      // a shared bind would be made by the primary and handed over; each worker's relay ports are
      // its own slice, bound here. Outside cluster workers exclusive changes nothing.
      socket.bind({ port, address: this.options.host, exclusive: true }, () => {
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
    await Promise.all(this.slots.map((slot) => closeSocket(slot.socket)));
    this.slots.length = 0;
    this.free.length = 0;
  }
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
