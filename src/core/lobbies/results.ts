/**
 * What the lobby operations refuse, as codes: the core says why, a front says it in its clients'
 * words and picks the status (the lobby front: src/fronts/lobby/errors.ts).
 */

/** Checked in this order. */
export type CreateLobbyError = 'unregistered' | 'alreadyInLobby' | 'tooManyLobbies' | 'noLobbyIdLeft';

/** Checked in this order. */
export type JoinLobbyError = 'unregistered' | 'alreadyInLobby' | 'lobbyMissing' | 'lobbyLocked' | 'lobbyFull' | 'nameTaken';

/** Checked in this order. */
export type StartMediationError =
  | 'unregistered'
  | 'lobbyMissing'
  | 'notHost'
  | 'mediationUnderWay'
  | 'tooFewMembers'
  | 'mediationUnavailable';

export type LobbyError = CreateLobbyError | JoinLobbyError | StartMediationError;

export type LobbyResult<T, E extends LobbyError> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };
