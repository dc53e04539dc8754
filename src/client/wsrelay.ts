// Clients of the wsrelay front (CarParty's protocol) for browsers and Node: a GameServer (the big
// screen) opens a room under a code, Phones join it; the relay carries JSON text both ways.
import { Emitter } from './events.js';
import { openWebSocket, OPEN, textOf, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The relay's limit by default is 1 MiB; a longer message is refused here too. */
export const DEFAULT_MAX_MESSAGE_CHARS = 1024 * 1024;

export interface WsRelayOptions {
  /** The wsrelay front's address, e.g. `ws://127.0.0.1:8080/` (any path). */
  readonly url: string;
  /** Node 20 has no global WebSocket: pass `WebSocket` from the `ws` package. Browsers need nothing. */
  readonly WebSocket?: WebSocketConstructor;
  /** Longer incoming messages close the connection with 1009, as the relay does. */
  readonly maxMessageChars?: number;
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/**
 * A message from a phone: `data` is the object with the relay's `client_id` stamped in; `text` is
 * the JSON exactly as relayed (JSON.parse rounds integers above 2^53; parse `text` yourself,
 * e.g. with lossless-json, if phones send such numbers).
 */
export interface PhoneMessage {
  readonly clientId: string;
  readonly data: JsonObject;
  readonly text: string;
}

export type GameServerEvents = {
  /** A phone logged in (or a phone sent `{"action":"connect"}` itself: the format cannot tell). */
  connect: { readonly clientId: string };
  /** A phone left, for any reason. */
  disconnect: { readonly clientId: string };
  message: PhoneMessage;
  close: Closed;
};

export type PhoneEvents = {
  /** A message from the game server, parsed (`data` undefined when it is not JSON) and as sent. */
  message: { readonly data: Json | undefined; readonly text: string };
  /** Closed: by the game server leaving, by the relay refusing the login (unknown code), or by close(). */
  close: Closed;
};

const parse = (text: string): Json | undefined => {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
};

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** One WebSocket with the bounded receive path both roles share. */
abstract class RelayPeer<Events extends { close: Closed }> extends Emitter<Events> {
  private closedWith: Closed | null = null;

  protected constructor(
    protected readonly socket: WebSocketLike,
    private readonly maxChars: number,
  ) {
    super();
    socket.addEventListener('message', (event) => {
      const text = textOf(event.data);
      if (text === null) return; // binary frames after login are dropped by the relay too
      if (text.length > maxChars) {
        socket.close(1009, 'message too big');
        return;
      }
      this.text(text);
    });
    socket.addEventListener('close', (event) => {
      this.closedWith = { code: event.code, reason: event.reason };
      this.emit('close', this.closedWith as Events['close']);
      this.rejectPending();
    });
  }

  protected abstract text(text: string): void;

  get isClosed(): boolean {
    return this.closedWith !== null;
  }

  protected sendText(text: string): void {
    if (this.socket.readyState !== OPEN) throw new Error('the relay connection is closed');
    if (text.length > this.maxChars) throw new RangeError(`message of ${text.length} characters is over the limit of ${this.maxChars}`);
    this.socket.send(text);
  }

  close(): Promise<Closed> {
    if (this.closedWith !== null) return Promise.resolve(this.closedWith);
    const closed = this.once('close', { timeoutMs: 5000 });
    this.socket.close(1000);
    return closed as Promise<Closed>;
  }
}

/** The game's side: one per room code; hears of phones joining and leaving, and what they send. */
export class GameServer extends RelayPeer<GameServerEvents> {
  private constructor(
    socket: WebSocketLike,
    maxChars: number,
    readonly code: string,
  ) {
    super(socket, maxChars);
  }

  /**
   * Opens a room under `code`. The protocol has no login reply: a taken code closes the socket
   * without a word (a `close` event). With the `ws` package's WebSocket, open() also waits for a
   * pong to a ping sent after the login, so once it resolves the relay has read the login and
   * phones can join; a browser cannot ping, so there the login is only sent.
   */
  static async open(options: WsRelayOptions & { readonly code: string }): Promise<GameServer> {
    const socket = await openWebSocket(options.url, options.WebSocket);
    const server = new GameServer(socket, options.maxMessageChars ?? DEFAULT_MAX_MESSAGE_CHARS, options.code);
    server.sendText(JSON.stringify({ action: 'login_server', server_code: options.code }));
    await server.loginRead(socket);
    return server;
  }

  private async loginRead(socket: WebSocketLike): Promise<void> {
    const pinger = socket as WebSocketLike & { ping?: () => void; once?: (event: 'pong', listener: () => void) => void };
    if (typeof pinger.ping !== 'function' || typeof pinger.once !== 'function') return;
    const once = pinger.once.bind(pinger);
    const ping = pinger.ping.bind(pinger);
    await new Promise<void>((resolve, reject) => {
      const off = this.on('close', () => reject(new Error(`the relay closed the connection: room code ${this.code} is taken or invalid`)));
      once('pong', () => {
        off();
        resolve();
      });
      ping();
    });
  }

  /** To every phone in the room. */
  broadcast(message: Json): void {
    this.sendText(JSON.stringify(message));
  }

  /** To the phones with this client id only (the relay routes on `receiver_id`). */
  sendTo(clientId: string, message: JsonObject): void {
    this.sendText(JSON.stringify({ ...message, receiver_id: clientId }));
  }

  /** Raw JSON text, relayed byte for byte (with a `receiver_id` member, to those phones only). */
  sendRaw(text: string): void {
    this.sendText(text);
  }

  protected text(text: string): void {
    const data = parse(text);
    if (!isObject(data) || typeof data.client_id !== 'string') return; // the relay stamps every phone message
    const keys = Object.keys(data);
    if (keys.length === 2 && (data.action === 'connect' || data.action === 'disconnect')) {
      this.emit(data.action, { clientId: data.client_id });
      return;
    }
    this.emit('message', { clientId: data.client_id, data, text });
  }
}

/** A player's side: joins a room by code under a client id, talks to the game server only. */
export class Phone extends RelayPeer<PhoneEvents> {
  private constructor(
    socket: WebSocketLike,
    maxChars: number,
    readonly code: string,
    readonly clientId: string,
  ) {
    super(socket, maxChars);
  }

  /** Joins room `code`; an unknown code closes the socket without a word (a `close` event). */
  static async join(options: WsRelayOptions & { readonly code: string; readonly clientId: string }): Promise<Phone> {
    const socket = await openWebSocket(options.url, options.WebSocket);
    const phone = new Phone(socket, options.maxMessageChars ?? DEFAULT_MAX_MESSAGE_CHARS, options.code, options.clientId);
    phone.sendText(JSON.stringify({ action: 'login_client', server_code: options.code, client_id: options.clientId }));
    return phone;
  }

  /** To the game server, which gets it with this phone's `client_id` added. Only objects are relayed. */
  send(message: JsonObject): void {
    this.sendText(JSON.stringify(message));
  }

  /** Raw JSON object text (e.g. with integers beyond 2^53, which the relay keeps exact). */
  sendRaw(text: string): void {
    this.sendText(text);
  }

  protected text(text: string): void {
    this.emit('message', { data: parse(text), text });
  }
}
