// A client of the lobby front (Orion's protocol) for browsers and Node: the HTTP calls and the
// WebSocket events, typed from the zod schemas the server validates and answers with. The UDP
// step of mediation needs a UDP socket, so it lives in the Node part (lobby-udp.ts).
import type { z } from 'zod';
import {
  createdLobbyBody,
  errorsBody,
  joinedLobbyBody,
  publicLobbiesBody,
  serverEvents,
  type createLobbyBody,
} from '../fronts/lobby/schemas.js';
import { Emitter } from './events.js';
import { boundedText, DEFAULT_MAX_BODY_CHARS } from './http.js';
import { decodeLobbyMessage, DEFAULT_MAX_MESSAGE_CHARS, encodeLobbyMessage } from './lobby-codec.js';
import { createWebSocket, opened, textOf, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

type ServerEvents = typeof serverEvents;
/** Every WebSocket event of the lobby front, by its method name, with its payload type. */
export type LobbyServerEvents = { [M in keyof ServerEvents]: z.infer<ServerEvents[M]> };

export type LobbyEvents = Omit<LobbyServerEvents, 'client_registered'> & {
  /** A message that is not `method:BASE64(JSON)`, names no known method, or does not fit its schema. */
  invalid: { readonly text: string };
  /** The WebSocket closed: the server forgot this client (its lobby left or closed). */
  close: { readonly code: number; readonly reason: string };
};

export type NewLobby = Omit<z.input<typeof createLobbyBody>, 'token'>;
export type PublicLobby = z.infer<typeof publicLobbiesBody>['lobbies'][number];
export type CreatedLobby = z.infer<typeof createdLobbyBody>;
export type JoinedLobby = z.infer<typeof joinedLobbyBody>;
export type MediationPeer = LobbyServerEvents['ptpMediation_peersConnection_start']['peers'][number];

/** A refused HTTP call: 400 (invalid body, unknown token) or 409 (the lobby's state forbids it). */
export class LobbyHttpError extends Error {
  constructor(
    readonly status: number,
    /** The server's user-facing reasons (empty when it gave none). */
    readonly errors: readonly string[],
  ) {
    super(`lobby server answered ${status}${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`);
  }
}

export interface LobbyClientOptions {
  /** The lobby front's HTTP address, e.g. `http://127.0.0.1:5980`; the WebSocket goes to the same place (ws:, or wss: for https:). */
  readonly url: string;
  /** Node 20 has no global WebSocket: pass `WebSocket` from the `ws` package. Browsers need nothing. */
  readonly WebSocket?: WebSocketConstructor;
  readonly fetch?: typeof fetch;
  /** Largest WebSocket message accepted (longer ones are reported as `invalid`). */
  readonly maxMessageChars?: number;
  /** Largest HTTP answer read. */
  readonly maxBodyChars?: number;
  /** How long connect() waits for client_registered. */
  readonly timeoutMs?: number;
}

const methods = Object.keys(serverEvents) as Array<keyof ServerEvents>;
const isServerMethod = (method: string): method is keyof ServerEvents => (methods as string[]).includes(method);

export class LobbyClient extends Emitter<LobbyEvents> {
  #token = '';
  private closedBy: { code: number; reason: string } | null = null;

  private constructor(
    private readonly socket: WebSocketLike,
    private readonly options: LobbyClientOptions,
  ) {
    super();
  }

  /** Opens the WebSocket and waits for client_registered, whose token every later call carries. */
  static async connect(options: LobbyClientOptions): Promise<LobbyClient> {
    const wsUrl = new URL(options.url);
    wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = createWebSocket(wsUrl.href, options.WebSocket);
    const client = new LobbyClient(socket, options);
    const registered = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no client_registered from the lobby server')), options.timeoutMs ?? 10_000);
      client.onRegistered = (token) => {
        clearTimeout(timer);
        resolve(token);
      };
      client.onEnded = () => {
        clearTimeout(timer);
        reject(new Error('the lobby server closed the WebSocket before client_registered'));
      };
    });
    socket.addEventListener('message', (event) => client.received(event.data));
    socket.addEventListener('close', (event) => client.closed(event.code, event.reason));
    await opened(socket, wsUrl.href).catch((error: unknown) => {
      registered.catch(() => undefined);
      throw error;
    });
    client.#token = await registered;
    return client;
  }

  private onRegistered: (token: string) => void = () => undefined;
  private onEnded: () => void = () => undefined;

  /** The secret the server gave this client (keep it out of logs). */
  get token(): string {
    return this.#token;
  }

  /** The lobby front's HTTP address this client talks to. */
  get url(): string {
    return this.options.url;
  }

  get isClosed(): boolean {
    return this.closedBy !== null;
  }

  async ping(): Promise<'pong'> {
    const text = await this.call('GET', '/ping');
    if (text !== 'pong') throw new Error(`unexpected ping answer ${JSON.stringify(text.slice(0, 64))}`);
    return 'pong';
  }

  /** Public lobbies, also ones being mediated; currentMembers counts the host. */
  async listLobbies(): Promise<PublicLobby[]> {
    return publicLobbiesBody.parse(JSON.parse(await this.call('GET', '/lobbies'))).lobbies;
  }

  /** Creates a lobby with this client as its host. */
  async createLobby(lobby: NewLobby): Promise<CreatedLobby> {
    return createdLobbyBody.parse(JSON.parse(await this.call('POST', '/lobbies', { ...lobby, token: this.#token })));
  }

  async joinLobby(lobbyId: string, peerName: string): Promise<JoinedLobby> {
    const path = `/lobbies/${encodeURIComponent(lobbyId)}/join`;
    return joinedLobbyBody.parse(JSON.parse(await this.call('POST', path, { token: this.#token, peerName })));
  }

  /** Host only: locks the lobby and starts peer-to-peer mediation (every member gets ptpMediation_send). */
  async startMediation(lobbyId: string): Promise<void> {
    await this.call('POST', `/lobbies/${encodeURIComponent(lobbyId)}/ptp/start`, { token: this.#token });
  }

  /** Chat to the lobby; every member, this one included, gets lobby_messaging_received. */
  sendChat(lobbyId: string, message: string): void {
    this.send('lobby_messaging_send', { token: this.#token, lobbyId, message });
  }

  /** Mediation: tell the server this client has reached its peers. */
  reportPeersConnected(): void {
    this.send('ptpMediation_peersConnection_success', { token: this.#token });
  }

  /** Closing the WebSocket ends the client: it leaves its lobby (closing it, if it hosts it). */
  close(): Promise<void> {
    if (this.closedBy !== null) return Promise.resolve();
    const closed = this.once('close', { timeoutMs: 5000 }).then(() => undefined, () => undefined);
    this.socket.close(1000);
    return closed;
  }

  private send(method: string, payload: object): void {
    if (this.closedBy !== null) throw new Error('the lobby WebSocket is closed');
    this.socket.send(encodeLobbyMessage(method, payload));
  }

  private async call(method: 'GET' | 'POST', path: string, body?: object): Promise<string> {
    const request = this.options.fetch ?? fetch;
    const response = await request(new URL(path, this.options.url), {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await boundedText(response, this.options.maxBodyChars ?? DEFAULT_MAX_BODY_CHARS);
    if (response.ok) return text;
    let errors: string[] = [];
    try {
      errors = errorsBody.parse(JSON.parse(text)).errors;
    } catch {
      errors = [];
    }
    throw new LobbyHttpError(response.status, errors);
  }

  private received(data: unknown): void {
    const text = textOf(data);
    const message = text === null ? null : decodeLobbyMessage(text, this.options.maxMessageChars ?? DEFAULT_MAX_MESSAGE_CHARS);
    if (message === null || !isServerMethod(message.method)) return this.invalid(text);
    const parsed = serverEvents[message.method].safeParse(message.payload);
    if (!parsed.success) return this.invalid(text);
    if (message.method === 'client_registered') {
      this.onRegistered((parsed.data as LobbyServerEvents['client_registered']).token);
      return;
    }
    // The key and its payload come from the same schema entry; TypeScript cannot correlate them here.
    this.emit(message.method, parsed.data as never);
  }

  private invalid(text: string | null): void {
    this.emit('invalid', { text: (text ?? '(binary)').slice(0, 200) });
  }

  private closed(code: number, reason: string): void {
    this.closedBy = { code, reason };
    this.onEnded();
    this.emit('close', { code, reason });
    this.rejectPending();
  }
}
