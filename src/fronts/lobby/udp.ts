// The lobby's UDP port: where members send `ptpMediation_connect` so the server sees their address.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import type { AddressPolicy } from '../../core/address-policy.js';
import { normalizeAddress } from '../../core/endpoint.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { bindUdp, closeUdp } from '../shared/listen.js';
import type { LobbyLimitReason } from './metrics.js';
import type { LobbyWire } from './wire.js';

export interface LobbyUdpDeps {
  readonly wire: LobbyWire;
  readonly addressPolicy: AddressPolicy;
  readonly limits: LimitSink<LobbyLimitReason>;
  readonly logger: Logger;
}

/** Hands each datagram from an allowed source to the wire, with its source as observed here. Sends nothing. */
export class LobbyUdp {
  private socket: UdpSocket | null = null;
  private boundPort: number | null = null;

  constructor(private readonly deps: LobbyUdpDeps) {}

  /** The bound port; null before bind(). */
  get port(): number | null {
    return this.boundPort;
  }

  async bind(host: string, port: number): Promise<number> {
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    socket.on('message', (datagram, remote) => this.datagram(datagram, remote));
    try {
      this.boundPort = await bindUdp(socket, port, host, (error) =>
        this.deps.logger.warn({ err: error.message }, 'lobby UDP socket error'),
      );
    } catch (error) {
      await closeUdp(socket);
      throw error;
    }
    this.socket = socket;
    return this.boundPort;
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket) await closeUdp(socket);
  }

  private datagram(datagram: Buffer, remote: RemoteInfo): void {
    // IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d; peers are told a.b.c.d.
    const address = normalizeAddress(remote.address);
    if (!this.deps.addressPolicy.allows(address)) {
      return this.deps.limits.report('denied_peer', address);
    }
    this.deps.wire
      .datagram(datagram, { address, port: remote.port })
      .catch((error: unknown) => this.deps.logger.error({ err: error }, 'lobby UDP datagram handling failed'));
  }
}
