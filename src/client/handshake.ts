// netfox's PacketHandshake over a Node UDP socket: both sides send an ASCII status every 100 ms,
// `$` then r (read a packet from the peer) / w (writes) / x (the peer said it read us), `-` for
// each missing flag. A side is done when it has x and receives a status with x.
import type { Socket } from 'node:dgram';

export interface HandshakeStatus {
  readonly read: boolean;
  readonly wrote: boolean;
  readonly handshake: boolean;
}

/** Longer datagrams are not statuses (game traffic may share the socket). */
const MAX_STATUS_LENGTH = 16;

export function encodeStatus(status: HandshakeStatus): string {
  return `$${status.read ? 'r' : '-'}${status.wrote ? 'w' : '-'}${status.handshake ? 'x' : '-'}`;
}

/** A status datagram's flags; null for anything that is not one. */
export function parseStatus(datagram: Uint8Array): HandshakeStatus | null {
  if (datagram.length < 1 || datagram.length > MAX_STATUS_LENGTH || datagram[0] !== 0x24) return null;
  const text = String.fromCharCode(...datagram);
  return { read: text.includes('r'), wrote: text.includes('w'), handshake: text.includes('x') };
}

export interface HandshakeOptions {
  /** Give up after this long (netfox: 8 s). */
  readonly timeoutMs?: number;
  /** Send a status this often (netfox: 100 ms). */
  readonly intervalMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * PacketHandshake.over_packet_peer: from `socket` (bound to the registered local port) to the
 * address noray gave (the peer's, or the relay's). Like netfox it takes a status from any source.
 * Resolves true when both sides have read each other, false on timeout.
 */
export async function handshake(socket: Socket, address: string, port: number, options: HandshakeOptions = {}): Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? 8000;
  const intervalMs = options.intervalMs ?? 100;
  let read = false;
  let handshaken = false;
  let done = false;
  const onMessage = (datagram: Buffer) => {
    const incoming = parseStatus(datagram);
    if (incoming === null) return;
    read = true;
    if (incoming.read) handshaken = true;
    if (incoming.handshake && handshaken) done = true;
  };
  socket.on('message', onMessage);
  try {
    for (let left = timeoutMs; left >= 0; left -= intervalMs) {
      socket.send(encodeStatus({ read, wrote: true, handshake: handshaken }), port, address);
      if (done) return true;
      await sleep(intervalMs);
    }
    return done;
  } finally {
    socket.off('message', onMessage);
  }
}

/**
 * PacketHandshake.over_enet, the host's side: a Godot host cannot read raw packets on its ENet
 * socket, so it sends `$rwx` to the address for the whole timeout and assumes the peer answered.
 */
export async function hostHandshake(socket: Socket, address: string, port: number, options: HandshakeOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 8000;
  const intervalMs = options.intervalMs ?? 100;
  const status = encodeStatus({ read: true, wrote: true, handshake: true });
  for (let left = timeoutMs; left >= 0; left -= intervalMs) {
    socket.send(status, port, address);
    await sleep(intervalMs);
  }
}
