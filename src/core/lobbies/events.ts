import type { Endpoint } from '../endpoint.js';

/** Internal handle of a connected client; never shown on the wire (the token is the client's secret). */
export type ClientId = number;

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
 * What the lobby core tells the outside world. A front implements it and turns each call
 * into its wire format; the core never knows about sockets.
 */
export interface LobbyEvents {
  peerJoined(to: ClientId, lobbyId: string, peerName: string): void;
  peerLeft(to: ClientId, lobbyId: string, peerName: string): void;
  lobbyClosed(to: ClientId, lobbyId: string, lobbyName: string): void;
  chatReceived(to: ClientId, lobbyId: string, message: ChatMessage): void;
  /** Ask a member to send its UDP packet (first request and reminders). */
  udpAddressRequested(to: ClientId, lobbyId: string): void;
  peersConnectionStart(to: ClientId, peers: readonly Endpoint[]): void;
  mediationSucceeded(to: ClientId): void;
  mediationAborted(to: ClientId, cause: AbortCause): void;
  /** Lifecycle notes for metrics and logs. */
  mediationStarted?(lobbyId: string, members: number): void;
  mediationEnded?(lobbyId: string, outcome: MediationOutcome): void;
}
