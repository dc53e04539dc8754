// The UDP step of lobby mediation (Node): on each ptpMediation_send (and its reminders) send
// `ptpMediation_connect` with the token from the game's UDP socket, so the server learns the
// address peers must use.
import { createSocket, type Socket } from 'node:dgram';
import type { LobbyClient } from './lobby.js';
import { encodeLobbyMessage } from './lobby-codec.js';

export interface MediationUdpOptions {
  /** The game's UDP socket (its address is what peers are given). Without it one is bound to any port. */
  readonly socket?: Socket;
  /** Where the lobby's UDP port is (default: the host of the lobby client's url). */
  readonly host?: string;
  /** The address a new socket binds to (default: every interface). */
  readonly bindAddress?: string;
}

export interface MediationUdp {
  /** The socket the packets go from: punch through to the peers from it. */
  readonly socket: Socket;
  /** Stops answering ptpMediation_send (the socket stays open: the game uses it). */
  stop(): void;
}

export async function mediateOverUdp(lobby: LobbyClient, options: MediationUdpOptions = {}): Promise<MediationUdp> {
  const socket = options.socket ?? (await bind(options.bindAddress));
  const host = options.host ?? new URL(lobby.url).hostname;
  const packet = Buffer.from(encodeLobbyMessage('ptpMediation_connect', { token: lobby.token }), 'utf8');
  const stop = lobby.on('ptpMediation_send', ({ port }) => socket.send(packet, port, host));
  return { socket, stop };
}

function bind(address?: string): Promise<Socket> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
