import { createSocket, type Socket } from 'node:dgram';
import { WebSocket, type ClientOptions } from 'ws';
import { decodeMessage, encodeMessage } from '../../src/fronts/lobby/codec.js';

export interface Received {
  method: string;
  payload: Record<string, unknown>;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

const WAIT_MS = 10_000;

/** A client that behaves like an Orion client: one WebSocket, HTTP calls, a UDP socket for mediation. */
export class OrionClient {
  readonly received: Received[] = [];
  token = '';
  private unread: Received[] = [];
  private waiters: Array<() => void> = [];
  private udp: Socket | null = null;
  closed = false;
  closeCode: number | null = null;

  private constructor(
    readonly httpPort: number,
    readonly udpPort: number | null,
    readonly ws: WebSocket,
    /** The server's address (a node of a cluster in the cluster tests). */
    readonly host = '127.0.0.1',
  ) {
    ws.on('message', (data, isBinary) => {
      const decoded = decodeMessage(isBinary ? (data as Buffer) : data.toString());
      const message: Received = decoded.ok
        ? { method: decoded.method, payload: decoded.payload }
        : { method: `invalid:${decoded.error}`, payload: {} };
      this.received.push(message);
      this.unread.push(message);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  /** `ws`: options of the WebSocket (e.g. `autoPong: false` for a client that never answers pings). */
  static async connect(httpPort: number, udpPort: number | null = null, path = '/', ws: ClientOptions = {}): Promise<OrionClient> {
    const socket = new WebSocket(`ws://127.0.0.1:${httpPort}${path}`, ws);
    return OrionClient.registered(new OrionClient(httpPort, udpPort, socket));
  }

  /** A client of the server at `host` (HTTP, WebSocket and mediation UDP all go there, UDP from `host`). */
  static async connectTo(host: string, httpPort: number, udpPort: number | null = null): Promise<OrionClient> {
    return OrionClient.registered(new OrionClient(httpPort, udpPort, new WebSocket(`ws://${host}:${httpPort}/`), host));
  }

  private static async registered(client: OrionClient): Promise<OrionClient> {
    const registered = await client.next('client_registered');
    client.token = String(registered.token);
    return client;
  }

  /** The next unread message with this method (earlier messages of other methods stay unread). */
  async next(method: string, timeoutMs = WAIT_MS): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.unread.findIndex((message) => message.method === method);
      if (index >= 0) {
        const [message] = this.unread.splice(index, 1);
        return (message as Received).payload;
      }
      if (this.closed) throw new Error(`socket closed while waiting for ${method}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${method}; got ${this.received.map((m) => m.method).join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until the socket is closed by the server. */
  async waitClosed(timeoutMs = WAIT_MS): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('socket still open');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closeCode;
  }

  count(method: string): number {
    return this.received.filter((message) => message.method === method).length;
  }

  unreadMethods(): string[] {
    return this.unread.map((message) => message.method);
  }

  sendWs(method: string, payload: object): void {
    this.ws.send(encodeMessage(method, payload));
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  async sendUdp(method = 'ptpMediation_connect', payload: object = { token: this.token }): Promise<number> {
    if (this.udpPort === null) throw new Error('no UDP port');
    if (!this.udp) {
      const udp = createSocket('udp4');
      await new Promise<void>((resolve) => udp.bind(0, this.host, () => resolve()));
      this.udp = udp;
    }
    const udp = this.udp;
    await new Promise<void>((resolve, reject) =>
      udp.send(Buffer.from(encodeMessage(method, payload), 'utf8'), this.udpPort as number, this.host, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    return udp.address().port;
  }

  get udpLocalPort(): number | null {
    return this.udp ? this.udp.address().port : null;
  }

  createLobby(body: Partial<{ hostName: string; lobbyName: string; isPublic: boolean; maxMembers: number }> = {}): Promise<HttpAnswer> {
    return http(this.httpPort, 'POST', '/lobbies', {
      token: this.token,
      hostName: 'host',
      lobbyName: 'lobby',
      isPublic: true,
      maxMembers: 8,
      ...body,
    }, { host: this.host });
  }

  join(lobbyId: string, peerName: string): Promise<HttpAnswer> {
    return http(this.httpPort, 'POST', `/lobbies/${lobbyId}/join`, { token: this.token, peerName }, { host: this.host });
  }

  startMediation(lobbyId: string): Promise<HttpAnswer> {
    return http(this.httpPort, 'POST', `/lobbies/${lobbyId}/ptp/start`, { token: this.token }, { host: this.host });
  }

  chat(lobbyId: string, message: string): void {
    this.sendWs('lobby_messaging_send', { token: this.token, lobbyId, message });
  }

  async close(): Promise<void> {
    this.udp?.close();
    this.udp = null;
    if (this.closed) return;
    this.ws.close();
    await this.waitClosed().catch(() => this.ws.terminate());
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

export async function http(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  init: { rawBody?: string; headers?: Record<string, string>; host?: string } = {},
): Promise<HttpAnswer> {
  const payload = init.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await fetch(`http://${init.host ?? '127.0.0.1'}:${port}${path}`, {
    method,
    headers: payload !== undefined ? { 'content-type': 'application/json', ...init.headers } : { ...init.headers },
    ...(payload !== undefined ? { body: payload } : {}),
  });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

/** Resolves when `check` holds, polling the server's state (not a timing assumption). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
