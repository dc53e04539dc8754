import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

/** WebSocket close codes the fronts use (RFC 6455 §7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidData: 1007,
  policy: 1008,
  tooLarge: 1009,
  internalError: 1011,
} as const;

/** On stop(), how long close handshakes may take before the remaining sockets are cut off. */
export const SHUTDOWN_GRACE_MS = 1000;

const BUSY_BODY = 'Server busy: too many connections\n';

/** The answer to an upgrade over a connection limit; `extraHeaders` lines end in CRLF. */
export function busyResponse(extraHeaders = ''): string {
  return (
    'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
    `${extraHeaders}Content-Length: ${BUSY_BODY.length}\r\n\r\n${BUSY_BODY}`
  );
}

/** Answers an upgrade request with a raw HTTP response instead of upgrading, then closes. */
export function refuseUpgrade(socket: Duplex, response: string): void {
  // The HTTP server has let go of the socket: without a listener an error would be thrown.
  socket.on('error', () => undefined);
  if (socket.writable) socket.end(response, () => socket.destroy());
  else socket.destroy();
}

/**
 * Shutdown for WebSockets: `close` sends each its close frame (the caller picks code and reason),
 * the close handshakes get SHUTDOWN_GRACE_MS, then whoever has not answered is cut off.
 */
export async function closeGracefully(sockets: readonly WebSocket[], close: (ws: WebSocket) => void): Promise<void> {
  if (sockets.length === 0) return;
  const closed = sockets.map((ws) =>
    ws.readyState === WebSocket.CLOSED ? undefined : new Promise<void>((resolve) => ws.once('close', () => resolve())),
  );
  for (const ws of sockets) close(ws);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(closed), new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
  clearTimeout(timer);
  for (const ws of sockets) ws.terminate();
}
