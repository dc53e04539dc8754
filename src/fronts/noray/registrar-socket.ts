import type { Logger } from 'pino';
import type { AddressPolicy } from '../../core/address-policy.js';
import type { Clock } from '../../core/clock.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import { sourceKey } from '../../core/limits/source-key.js';
import { normalizeAddress, type Endpoint } from '../../core/endpoint.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import type { SessionRegistrar, SessionRegistration } from '../../core/session-registrar.js';
import type { HostSession } from './handlers.js';
import type { NorayLimitReason, NorayMetrics } from './metrics.js';
import type { StunResponder } from './stun-responder.js';
import { UdpPort } from '../shared/udp-port.js';

const OK = Buffer.from('OK');
const UNKNOWN = Buffer.from('Unknown host pid!');
const DENIED = Buffer.from('Address not allowed');

export interface RegistrarSocketOptions {
  readonly host: string;
  readonly port: number;
  /** The shape of a PrivateID: anything else is not looked up and gets no reply at all. */
  readonly pidLength: number;
  readonly pidCharset: string;
  /** Replies per second (and burst) to one source IP; registrations above it are still taken. */
  readonly replyRate: number;
  readonly replyBurst: number;
  readonly clock: Clock;
  /** Our own UDP endpoints (registrar, relay ports): never registered, never answered. */
  readonly isOwnEndpoint: (address: string, port: number) => boolean;
  readonly registrar: SessionRegistrar<HostSession>;
  readonly metrics: NorayMetrics;
  readonly logger: Logger;
  readonly addressPolicy: AddressPolicy;
  readonly limits: LimitSink<NorayLimitReason>;
  /** A registered player re-registered from a new endpoint (its relays follow it). */
  readonly onMoved?: (from: Endpoint, to: Endpoint) => void;
  /** Answers STUN Binding requests on this port too; a STUN datagram is never taken for a PrivateID. */
  readonly stun?: StunResponder;
}

/**
 * The UDP registrar: a datagram holding a PrivateID tells us that player's external address.
 *
 * No datagram can start an exchange that sustains itself (the "loop DoS" class): a datagram that
 * cannot be a PrivateID gets no reply (so our own replies, or another registrar's, are never
 * answered), replies to one source IP are rate-limited, and a source that is one of our own
 * endpoints is ignored. Replies are never longer than the request: no amplification. STUN Binding
 * requests (told apart by their header) go to the StunResponder instead, whose answers are at most
 * 44 bytes and rate-limited per source the same way.
 */
export class RegistrarSocket {
  private readonly udp: UdpPort;
  private readonly replies: SourceRateLimiter;
  private readonly pidChars: Set<string>;

  constructor(private readonly options: RegistrarSocketOptions) {
    this.replies = new SourceRateLimiter(options.replyRate, options.replyBurst, options.clock);
    this.pidChars = new Set(options.pidCharset);
    this.udp = new UdpPort(options.host, options.port, 'registrar', options.logger, (message, from) => this.receive(message, from.address, from.port));
  }

  get port(): number {
    return this.udp.port;
  }

  bind(): Promise<void> {
    return this.udp.bind();
  }

  close(): Promise<void> {
    return this.udp.close();
  }

  private receive(message: Buffer, fromAddress: string, fromPort: number): void {
    const { metrics, addressPolicy } = this.options;
    const address = normalizeAddress(fromAddress);
    if (this.options.isOwnEndpoint(address, fromPort)) {
      metrics.registrarFail.inc();
      this.options.limits.report('own_address', address);
      return;
    }
    const stun = this.options.stun;
    if (stun?.handle(message, { address, port: fromPort }, 'registrar', (answer) => this.udp.socket.send(answer, fromPort, fromAddress))) return;
    const secret = this.pidOf(message);
    if (secret === null) {
      // Not a PrivateID: silence. Answering garbage is what lets two UDP services ping-pong.
      metrics.registrarFail.inc();
      return;
    }
    if (!addressPolicy.allows(address)) {
      metrics.registrarFail.inc();
      this.options.limits.report('denied_peer', address);
      this.replyShort(DENIED, message.length, fromAddress, fromPort);
      return;
    }
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

  /**
   * The PrivateID a datagram carries, or null when it cannot be one: exactly the configured
   * length in characters of the configured charset, optionally followed by a line ending.
   */
  private pidOf(message: Buffer): string | null {
    // Characters are at most 4 UTF-8 bytes: a longer datagram cannot be a PrivateID.
    if (message.length < this.options.pidLength || message.length > this.options.pidLength * 4 + 2) return null;
    const text = message.toString('utf8').replace(/\r?\n$/, '');
    let count = 0;
    for (const char of text) {
      if (!this.pidChars.has(char)) return null;
      count++;
    }
    return count === this.options.pidLength ? text : null;
  }

  /** Never more bytes than the request carried: a spoofed source cannot be flooded through us. */
  private replyShort(payload: Buffer, requestLength: number, address: string, port: number): void {
    if (requestLength > 0) this.reply(payload.subarray(0, Math.min(payload.length, requestLength)), address, port);
  }

  private reply(payload: Buffer, address: string, port: number): void {
    const source = normalizeAddress(address);
    if (!this.replies.take(sourceKey(source))) {
      this.options.limits.report('registrar_reply_rate', source);
      return;
    }
    this.udp.socket.send(payload, port, address);
  }
}
