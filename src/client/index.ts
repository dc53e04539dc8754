// noray/client: the parts of the SDK that run in browsers and Node alike (no node:* imports; a
// test walks the built import graph). Node-only parts: noray/client/node.
export { Emitter, EventQueue, type Listener } from './events.js';
export { decodeLobbyMessage, encodeLobbyMessage, type LobbyMessage } from './lobby-codec.js';
export {
  LobbyClient,
  LobbyHttpError,
  type CreatedLobby,
  type JoinedLobby,
  type LobbyClientOptions,
  type LobbyEvents,
  type LobbyServerEvents,
  type MediationPeer,
  type NewLobby,
  type PublicLobby,
} from './lobby.js';
export { ResponseTooLargeError } from './http.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
export {
  GameServer,
  Phone,
  type Closed,
  type GameServerEvents,
  type Json,
  type JsonObject,
  type PhoneEvents,
  type PhoneMessage,
  type WsRelayOptions,
} from './wsrelay.js';
