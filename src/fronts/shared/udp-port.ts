import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { bindUdp, closeUdp } from './listen.js';

/** One server UDP port (the registrar, the STUN alt port): its socket, bound and closed the one way. */
export class UdpPort {
  readonly socket: Socket;

  constructor(
    private readonly host: string,
    private readonly requestedPort: number,
    /** Names the port in the log line of a later socket error. */
    private readonly label: string,
    private readonly logger: Logger,
    onDatagram: (message: Buffer, from: RemoteInfo) => void,
  ) {
    this.socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    this.socket.on('message', onDatagram);
  }

  get port(): number {
    return this.socket.address().port;
  }

  async bind(): Promise<void> {
    await bindUdp(this.socket, this.requestedPort, this.host, (error) => this.logger.warn({ err: error.message }, `${this.label} socket error`));
  }

  close(): Promise<void> {
    return closeUdp(this.socket);
  }
}
