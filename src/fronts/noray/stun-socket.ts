import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { normalizeAddress } from '../../core/endpoint.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import type { NorayLimitReason, NorayMetrics } from './metrics.js';
import type { StunResponder } from './stun-responder.js';
import { bindUdp, closeUdp } from '../shared/listen.js';

export interface StunSocketOptions {
  readonly host: string;
  readonly port: number;
  readonly responder: StunResponder;
  /** Our own UDP endpoints: never answered. */
  readonly isOwnEndpoint: (address: string, port: number) => boolean;
  readonly metrics: NorayMetrics;
  readonly limits: LimitSink<NorayLimitReason>;
  readonly logger: Logger;
}

/**
 * NORAY_STUN_ALT_PORT: a UDP port that only answers STUN Binding requests. A client that asks
 * both this port and the registrar port from one socket learns whether its NAT maps it to the
 * same external address for two destinations (endpoint-independent mapping: punchthrough works)
 * or not (a symmetric NAT: only the relay will). Anything else arriving here gets no reply.
 *
 * Bound like the registrar (not exclusive): under `--workers N` node:cluster shares the one
 * socket between the workers.
 */
export class StunSocket {
  private readonly socket: Socket;

  constructor(private readonly options: StunSocketOptions) {
    this.socket = createSocket(options.host.includes(':') ? 'udp6' : 'udp4');
    this.socket.on('message', (message, from) => this.receive(message, from.address, from.port));
  }

  get port(): number {
    return this.socket.address().port;
  }

  async bind(): Promise<void> {
    await bindUdp(this.socket, this.options.port, this.options.host, (error) =>
      this.options.logger.warn({ err: error.message }, 'stun socket error'),
    );
  }

  close(): Promise<void> {
    return closeUdp(this.socket);
  }

  private receive(message: Buffer, fromAddress: string, fromPort: number): void {
    const address = normalizeAddress(fromAddress);
    if (this.options.isOwnEndpoint(address, fromPort)) {
      this.options.limits.report('own_address', address);
      return;
    }
    const stun = this.options.responder.handle(message, { address, port: fromPort }, 'alt', (answer) =>
      this.socket.send(answer, fromPort, fromAddress),
    );
    if (!stun) this.options.metrics.stunRequests.inc({ socket: 'alt', outcome: 'not_stun' });
  }
}
