// The part of the WebSocket API the SDK uses: what browsers' WebSocket and the `ws` package's
// (for Node, which has no global WebSocket before Node 22) both provide.

export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: () => void): void;
}

/** `WebSocket` in browsers; in Node 20 pass `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export const OPEN = 1;

/** The constructor to use: the one given, else the global one, else a clear error. */
export function webSocketConstructor(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const found = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (found === undefined) {
    throw new Error('no global WebSocket here (Node 20 has none): pass one, e.g. { WebSocket } from the ws package');
  }
  return found;
}

/** A new socket, reading binary frames as ArrayBuffers in browsers and Node alike. */
export function createWebSocket(url: string, given: WebSocketConstructor | undefined): WebSocketLike {
  const Constructor = webSocketConstructor(given);
  const socket = new Constructor(url);
  socket.binaryType = 'arraybuffer';
  return socket;
}

/**
 * Resolves once `socket` is open; rejects if it closes or fails first. Attach message listeners
 * before awaiting it: a server that speaks first (the lobby) can deliver a frame in the same tick
 * as the open event.
 */
export function opened(socket: WebSocketLike, url: string): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    let settled = false;
    socket.addEventListener('open', () => {
      settled = true;
      resolve(socket);
    });
    socket.addEventListener('error', () => {
      if (!settled) reject(new Error(`cannot open ${url}`));
      settled = true;
    });
    socket.addEventListener('close', (event) => {
      if (!settled) reject(new Error(`${url} closed before it opened (${event.code})`));
      settled = true;
    });
  });
}

export function openWebSocket(url: string, given: WebSocketConstructor | undefined): Promise<WebSocketLike> {
  return opened(createWebSocket(url, given), url);
}

/** A text frame's string; null for binary frames (which these protocols do not use after login). */
export function textOf(data: unknown): string | null {
  return typeof data === 'string' ? data : null;
}
