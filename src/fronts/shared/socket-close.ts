import type { Socket } from 'node:net';

/** How long a closing peer gets to read our last message and close its side. */
export const CLOSE_GRACE_MS = 2000;

/**
 * Sends a last message (an error line or frame) and half-closes. Until the peer closes its side,
 * or the grace time is over, whatever it still sends is read and discarded: closing with unread
 * bytes would send a reset, and a reset can swallow the message.
 */
export function endWithMessage(socket: Socket, last: string | Uint8Array, graceMs = CLOSE_GRACE_MS): void {
  if (socket.destroyed) return;
  const grace = setTimeout(() => socket.destroy(), graceMs);
  grace.unref();
  socket.once('close', () => clearTimeout(grace));
  socket.on('error', () => undefined);
  socket.resume();
  socket.end(last);
}
