// The lobby front's error catalogue: each refusal code of the core, its HTTP status and the exact
// line clients read (Orion's wording where Orion has one).
import { describe, expect, it } from 'vitest';
import {
  ABORT_REASONS,
  CREATE_LOBBY_REFUSALS,
  JOIN_LOBBY_REFUSALS,
  refusalText,
  START_MEDIATION_REFUSALS,
  type Refusal,
} from '../../src/fronts/lobby/errors.js';

const answers = (refusals: Readonly<Record<string, Refusal>>) =>
  Object.fromEntries(Object.entries(refusals).map(([code, refusal]) => [code, [refusal.status, refusalText(refusal, 'AB12C')]]));

const UNREGISTERED = [400, 'The client is unregistered. Try reconnecting.'];

describe('lobby error catalogue', () => {
  it('POST /lobbies', () => {
    expect(answers(CREATE_LOBBY_REFUSALS)).toEqual({
      unregistered: UNREGISTERED,
      alreadyInLobby: [409, 'The client is already in a lobby and cannot be the host of a new lobby.'],
      tooManyLobbies: [503, 'The server has too many lobbies open. Try again later.'],
      noLobbyIdLeft: [409, 'The server could not allocate a lobby id. Try again later.'],
    });
  });

  it('POST /lobbies/:id/join, in the order the core checks', () => {
    expect(answers(JOIN_LOBBY_REFUSALS)).toEqual({
      unregistered: UNREGISTERED,
      alreadyInLobby: [409, 'The client is already in a lobby and cannot join another.'],
      lobbyMissing: [409, "Lobby AB12C doesn't exist."],
      lobbyLocked: [409, 'The lobby is in the middle of peer-to-peer mediation and cannot be joined right now.'],
      lobbyFull: [409, 'The lobby is full.'],
      nameTaken: [409, 'The requested name is taken.'],
    });
    expect(Object.keys(JOIN_LOBBY_REFUSALS)).toEqual(['unregistered', 'alreadyInLobby', 'lobbyMissing', 'lobbyLocked', 'lobbyFull', 'nameTaken']);
  });

  it('POST /lobbies/:id/ptp/start, in the order the core checks', () => {
    expect(answers(START_MEDIATION_REFUSALS)).toEqual({
      unregistered: UNREGISTERED,
      lobbyMissing: [409, "Lobby AB12C doesn't exist."],
      notHost: [409, 'Only the host of the lobby can start peer-to-peer mediation.'],
      mediationUnderWay: [409, 'Peer-to-peer mediation is already under way for this lobby.'],
      tooFewMembers: [409, 'Peer-to-peer mediation needs at least 2 lobby members.'],
      mediationUnavailable: [409, 'Peer-to-peer mediation is not available on this server.'],
    });
    expect(Object.keys(START_MEDIATION_REFUSALS)).toEqual([
      'unregistered',
      'lobbyMissing',
      'notHost',
      'mediationUnderWay',
      'tooFewMembers',
      'mediationUnavailable',
    ]);
  });

  it('ptpMediation_aborted reasons', () => {
    expect(ABORT_REASONS).toEqual({
      membersChanged: 'Lobby members changed.',
      serverConnectTimeout: 'Peer-to-peer Mediation timed out waiting for peers to send UDP packets to server.',
      connectTimeout: 'Peer-to-peer Mediation timed out waiting for peers to connect to one another.',
    });
  });
});
