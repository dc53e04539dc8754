import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { normalizeAddress } from '../../core/endpoint.js';
import type { AddressRegistrar } from '../../core/registrar.js';
import type { HostSession } from './handlers.js';
import type { NorayMetrics } from './metrics.js';

const OK = Buffer.from('OK');
const UNKNOWN = Buffer.from('Unknown host pid!');

export interface RegistrarSocketOptions {
  readonly host: string;
  readonly port: number;
  /** Datagrams longer than any PrivateID can be are not looked up. */
  readonly maxPidLength: number;
  readonly registrar: AddressRegistrar<HostSession>;
  readonly metrics: NorayMetrics;
  readonly logger: Logger;
}

/**
 * The UDP registrar: a datagram holding a PrivateID tells us that player's external address.
 * Replies are never longer than the request, so the port cannot amplify a spoofed flood.
 */
export class RegistrarSocket {
  private readonly socket: Socket;

  constructor(private readonly options: RegistrarSocketOptions) {
    this.socket = createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
    this.socket.on('message', (message, from) => this.receive(message, from.address, from.port));
    this.socket.on('error', (error) => options.logger.warn({ err: error.message }, 'registrar socket error'));
  }

  get port(): number {
    return this.socket.address().port;
  }

  bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(this.options.port, this.options.host, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private receive(message: Buffer, fromAddress: string, fromPort: number): void {
    const { registrar, metrics } = this.options;
    const secret = message.length <= this.options.maxPidLength + 2 ? message.toString('utf8').trim() : '';
    const result = secret === '' ? { outcome: 'unknown' as const } : registrar.register(secret, {
      address: normalizeAddress(fromAddress),
      port: fromPort,
    });
    if (result.outcome === 'unknown') {
      metrics.registrarFail.inc();
      if (message.length > 0) this.reply(UNKNOWN.subarray(0, Math.min(UNKNOWN.length, message.length)), fromAddress, fromPort);
      return;
    }
    if (result.outcome === 'repeat') metrics.registrarRepeat.inc();
    else {
      metrics.registrarSuccess.inc();
      this.options.logger.info(
        { oid: result.session.publicId, address: `${result.endpoint.address}:${result.endpoint.port}`, moved: result.outcome === 'moved' },
        'external address registered',
      );
    }
    this.reply(OK, fromAddress, fromPort);
  }

  private reply(payload: Buffer, address: string, port: number): void {
    this.socket.send(payload, port, address);
  }
}
