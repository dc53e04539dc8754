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
  /**
   * Also send again this often until the peers list (or an abort) arrives: UDP is lossy, and the
   * server's own reminders come only every NORAY_LOBBY_CONNECT_REQUEST_INTERVAL (10 s). At most
   * MAX_RESENDS times per request. Default: only when asked, as Orion clients do.
   */
  readonly resendMs?: number;
}

export const MAX_RESENDS = 100;

export interface MediationUdp {
  /** The socket the packets go from: punch through to the peers from it. */
  readonly socket: Socket;
  /** Stops answering ptpMediation_send and resending (the socket stays open: the game uses it). */
  stop(): void;
}

export async function mediateOverUdp(lobby: LobbyClient, options: MediationUdpOptions = {}): Promise<MediationUdp> {
  const socket = options.socket ?? (await bind(options.bindAddress));
  const host = options.host ?? new URL(lobby.url).hostname;
  const packet = Buffer.from(encodeLobbyMessage('ptpMediation_connect', { token: lobby.token }), 'utf8');
  let resend: ReturnType<typeof setInterval> | undefined;
  const quiet = () => {
    clearInterval(resend);
    resend = undefined;
  };
  /** False once the game closed the socket (sending then throws): nothing more to do. */
  const send = (port: number): boolean => {
    try {
      socket.send(packet, port, host);
      return true;
    } catch {
      quiet();
      return false;
    }
  };
  const offs = [
    lobby.on('ptpMediation_send', ({ port }) => {
      quiet();
      if (!send(port) || options.resendMs === undefined) return;
      let left = MAX_RESENDS;
      resend = setInterval(() => void (left-- > 0 ? send(port) : quiet()), options.resendMs);
    }),
    lobby.on('ptpMediation_peersConnection_start', quiet),
    lobby.on('ptpMediation_aborted', quiet),
    lobby.on('lobby_closed', quiet),
    lobby.on('close', quiet),
  ];
  const stop = () => {
    quiet();
    for (const off of offs) off();
  };
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
