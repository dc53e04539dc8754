/**
 * The lobby front's words for what it refuses. The core answers with codes
 * (src/core/lobbies/results.ts); this catalogue gives each code its HTTP status and the line
 * clients read. Orion's texts are kept word for word (clients may show or compare them); the
 * ones Orion has no counterpart for are ours.
 */
import type {
  AbortCause,
  CreateLobbyError,
  JoinLobbyError,
  LobbyError,
  StartMediationError,
} from '../../core/lobbies/index.js';

/** Every fixed line of an `errors` array. */
export const TEXTS = {
  unregistered: 'The client is unregistered. Try reconnecting.',
  alreadyInLobbyCreate: 'The client is already in a lobby and cannot be the host of a new lobby.',
  alreadyInLobbyJoin: 'The client is already in a lobby and cannot join another.',
  lobbyLocked: 'The lobby is in the middle of peer-to-peer mediation and cannot be joined right now.',
  lobbyFull: 'The lobby is full.',
  nameTaken: 'The requested name is taken.',
  notHost: 'Only the host of the lobby can start peer-to-peer mediation.',
  mediationUnderWay: 'Peer-to-peer mediation is already under way for this lobby.',
  tooFewMembers: 'Peer-to-peer mediation needs at least 2 lobby members.',
  mediationUnavailable: 'Peer-to-peer mediation is not available on this server.',
  noLobbyIdLeft: 'The server could not allocate a lobby id. Try again later.',
  tooManyLobbies: 'The server has too many lobbies open. Try again later.',
  malformedJson: 'The request body is not valid JSON.',
  rateLimited: 'Too many requests from this address. Slow down.',
  notFound: 'Not found.',
  internal: 'Internal server error.',
} as const;

/** Orion's "lobby does not exist" line names the id from the URL. */
export const lobbyMissingText = (lobbyId: string): string => `Lobby ${lobbyId} doesn't exist.`;

/** `ptpMediation_aborted {abortReason}`: Orion's reasons, word for word. */
export const ABORT_REASONS: { readonly [C in AbortCause]: string } = {
  membersChanged: 'Lobby members changed.',
  serverConnectTimeout: 'Peer-to-peer Mediation timed out waiting for peers to send UDP packets to server.',
  connectTimeout: 'Peer-to-peer Mediation timed out waiting for peers to connect to one another.',
};

/** How one refusal code is answered: a status and the single line of `{errors: [...]}`. */
export interface Refusal {
  readonly status: 400 | 409 | 503;
  /** A fixed line, or one that names the lobby id of the request. */
  readonly text: string | ((lobbyId: string) => string);
}

/** A refusal for every code an operation can return, listed in the order the core checks them. */
export type Refusals<E extends LobbyError> = { readonly [C in E]: Refusal };

const unregistered: Refusal = { status: 400, text: TEXTS.unregistered };
const conflict = (text: Refusal['text']): Refusal => ({ status: 409, text });
const lobbyMissing = conflict(lobbyMissingText);

export const CREATE_LOBBY_REFUSALS: Refusals<CreateLobbyError> = {
  unregistered,
  alreadyInLobby: conflict(TEXTS.alreadyInLobbyCreate),
  tooManyLobbies: { status: 503, text: TEXTS.tooManyLobbies },
  noLobbyIdLeft: conflict(TEXTS.noLobbyIdLeft),
};

export const JOIN_LOBBY_REFUSALS: Refusals<JoinLobbyError> = {
  unregistered,
  alreadyInLobby: conflict(TEXTS.alreadyInLobbyJoin),
  lobbyMissing,
  lobbyLocked: conflict(TEXTS.lobbyLocked),
  lobbyFull: conflict(TEXTS.lobbyFull),
  nameTaken: conflict(TEXTS.nameTaken),
};

export const START_MEDIATION_REFUSALS: Refusals<StartMediationError> = {
  unregistered,
  lobbyMissing,
  notHost: conflict(TEXTS.notHost),
  mediationUnderWay: conflict(TEXTS.mediationUnderWay),
  tooFewMembers: conflict(TEXTS.tooFewMembers),
  mediationUnavailable: conflict(TEXTS.mediationUnavailable),
};

/** The line a refusal reads for a request about `lobbyId`. */
export function refusalText(refusal: Refusal, lobbyId: string): string {
  return typeof refusal.text === 'string' ? refusal.text : refusal.text(lobbyId);
}
