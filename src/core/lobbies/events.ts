import type { Endpoint } from '../endpoint.js';

/**
 * Internal id of a connected client, unique for its life (random, never reused) and the address
 * its events are delivered to; never shown on the wire (the token is the client's secret).
 */
export type ClientId = string;

export interface ChatMessage {
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  readonly senderName: string;
  readonly message: string;
}

/** Why a mediation attempt was abandoned; a front words it for its clients. */
export type AbortCause = 'membersChanged' | 'serverConnectTimeout' | 'connectTimeout';

/** How a mediation ended: success, one of the abort causes, or the host leaving (which closes the lobby). */
export type MediationOutcome = 'succeeded' | AbortCause | 'hostLeft';

/**
 * What the lobby core tells one client, delivered to it by its ClientId through a
 * Delivery<LobbyEvent>. A front turns each into its wire format; the core never knows about sockets.
 */
export type LobbyEvent =
  | { readonly kind: 'peerJoined' | 'peerLeft'; readonly lobbyId: string; readonly peerName: string }
  | { readonly kind: 'lobbyClosed'; readonly lobbyId: string; readonly lobbyName: string }
  | { readonly kind: 'chat'; readonly lobbyId: string; readonly message: ChatMessage }
  /** Asks a member to send its UDP packet (first request and reminders). */
  | { readonly kind: 'udpRequested'; readonly lobbyId: string }
  | { readonly kind: 'peersStart'; readonly peers: readonly Endpoint[] }
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'aborted'; readonly cause: AbortCause };

/** Lifecycle notes for metrics and logs (not addressed to any client). */
export interface MediationObserver {
  mediationStarted?(lobbyId: string, members: number): void;
  mediationEnded?(lobbyId: string, outcome: MediationOutcome): void;
}
