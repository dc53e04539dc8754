// The doctor's UDP side: one socket that sends a datagram every interval until an answer it
// accepts arrives, for the registrar (PrivateID -> OK), STUN (Binding -> mapped address) and relay.
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Endpoint } from '../core/endpoint.js';
import { normalizeAddress } from '../core/endpoint.js';
import { decodeBindingSuccess, encodeBindingRequest, TRANSACTION_ID_BYTES } from '../core/stun.js';

export const RESEND_MS = 100;

type Listener = (message: Buffer, from: Endpoint) => void;

export class ProbeSocket {
  private readonly listeners = new Set<Listener>();

  private constructor(private readonly socket: Socket) {
    socket.on('message', (message: Buffer, from: RemoteInfo) => {
      const endpoint = { address: normalizeAddress(from.address), port: from.port };
      for (const listener of this.listeners) listener(message, endpoint);
    });
    socket.on('error', () => undefined);
  }

  static async open(family: 4 | 6): Promise<ProbeSocket> {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new ProbeSocket(socket);
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  send(payload: Buffer, host: string, port: number): void {
    this.socket.send(payload, port, host);
  }

  /** Calls `listener` for every datagram until the returned function is called. */
  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends `payload` every RESEND_MS until `accept` returns an answer (not null) or timeoutMs pass. */
  async exchange<T>(payload: Buffer, host: string, port: number, timeoutMs: number, accept: (message: Buffer, from: Endpoint) => T | null): Promise<T | null> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (value: T | null) => {
        clearInterval(timer);
        clearTimeout(deadline);
        stop();
        resolve(value);
      };
      const stop = this.listen((message, from) => {
        const answer = accept(message, from);
        if (answer !== null) finish(answer);
      });
      const deadline = setTimeout(() => finish(null), timeoutMs);
      this.send(payload, host, port);
      timer = setInterval(() => this.send(payload, host, port), RESEND_MS);
    });
  }

  /** netfox's register_remote(): the PrivateID until a reply; the reply's text, or null without one. */
  register(pid: string, host: string, port: number, timeoutMs: number): Promise<string | null> {
    return this.exchange(Buffer.from(pid), host, port, timeoutMs, (message, from) =>
      from.port === port && from.address === normalizeAddress(host) ? message.toString('utf8').slice(0, 200) : null,
    );
  }

  /** The address a STUN server at host:port sees this socket as, or null without an answer. */
  mappedBy(host: string, port: number, timeoutMs: number): Promise<Endpoint | null> {
    const id = randomBytes(TRANSACTION_ID_BYTES);
    return this.exchange(encodeBindingRequest(id), host, port, timeoutMs, (message) => decodeBindingSuccess(message, id));
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // closed already
    }
  }
}
