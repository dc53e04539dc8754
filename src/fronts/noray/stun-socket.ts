import type { Logger } from 'pino';
import { normalizeAddress } from '../../core/endpoint.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import type { NorayLimitReason, NorayMetrics } from './metrics.js';
import type { StunResponder } from './stun-responder.js';
import { UdpPort } from '../shared/udp-port.js';

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
  private readonly udp: UdpPort;

  constructor(private readonly options: StunSocketOptions) {
    this.udp = new UdpPort(options.host, options.port, 'stun', options.logger, (message, from) => this.receive(message, from.address, from.port));
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
    const address = normalizeAddress(fromAddress);
    if (this.options.isOwnEndpoint(address, fromPort)) {
      this.options.limits.report('own_address', address);
      return;
    }
    const stun = this.options.responder.handle(message, { address, port: fromPort }, 'alt', (answer) =>
      this.udp.socket.send(answer, fromPort, fromAddress),
    );
    if (!stun) this.options.metrics.stunRequests.inc({ socket: 'alt', outcome: 'not_stun' });
  }
}
