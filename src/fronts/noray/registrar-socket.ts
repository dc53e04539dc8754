import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import type { AddressPolicy } from '../../core/address-policy.js';
import { normalizeAddress, type Endpoint } from '../../core/endpoint.js';
import type { LimitReporter } from '../../ops/limit-reporter.js';
import type { SessionRegistrar, SessionRegistration } from '../../core/session-registrar.js';
import type { HostSession } from './handlers.js';
import type { NorayMetrics } from './metrics.js';

const OK = Buffer.from('OK');
const UNKNOWN = Buffer.from('Unknown host pid!');
const DENIED = Buffer.from('Address not allowed');

export interface RegistrarSocketOptions {
  readonly host: string;
  readonly port: number;
  /** Datagrams longer than any PrivateID can be are not looked up. */
  readonly maxPidLength: number;
  readonly registrar: SessionRegistrar<HostSession>;
  readonly metrics: NorayMetrics;
  readonly logger: Logger;
  readonly addressPolicy: AddressPolicy;
  readonly limits: LimitReporter;
  /** A registered player re-registered from a new endpoint (its relays follow it). */
  readonly onMoved?: (from: Endpoint, to: Endpoint) => void;
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
    const { metrics, addressPolicy } = this.options;
    const address = normalizeAddress(fromAddress);
    if (!addressPolicy.allows(address)) {
      metrics.registrarFail.inc();
      this.options.limits.report('noray', 'denied_peer', address);
      this.replyShort(DENIED, message.length, fromAddress, fromPort);
      return;
    }
    const secret = message.length <= this.options.maxPidLength + 2 ? message.toString('utf8').trim() : '';
    this.options.registrar.register(secret, { address, port: fromPort }).then(
      (result) => this.answer(result, message.length, fromAddress, fromPort),
      (error: unknown) => this.options.logger.warn({ err: (error as Error).message }, 'registration failed'),
    );
  }

  private answer(result: SessionRegistration<HostSession>, requestLength: number, fromAddress: string, fromPort: number): void {
    const { metrics } = this.options;
    if (result.outcome === 'unknown') {
      metrics.registrarFail.inc();
      this.replyShort(UNKNOWN, requestLength, fromAddress, fromPort);
      return;
    }
    if (result.outcome === 'repeat') metrics.registrarRepeat.inc();
    else {
      if (result.outcome === 'moved') this.options.onMoved?.(result.previous, result.endpoint);
      metrics.registrarSuccess.inc();
      this.options.logger.info(
        { oid: result.session.publicId, address: `${result.endpoint.address}:${result.endpoint.port}`, moved: result.outcome === 'moved' },
        'external address registered',
      );
    }
    this.reply(OK, fromAddress, fromPort);
  }

  /** Never more bytes than the request carried: a spoofed source cannot be flooded through us. */
  private replyShort(payload: Buffer, requestLength: number, address: string, port: number): void {
    if (requestLength > 0) this.reply(payload.subarray(0, Math.min(payload.length, requestLength)), address, port);
  }

  private reply(payload: Buffer, address: string, port: number): void {
    this.socket.send(payload, port, address);
  }
}
