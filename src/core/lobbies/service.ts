import type { Clock, Timer } from '../clock.js';
import { SessionDirectory, type Session } from '../directory.js';
import type { Endpoint } from '../endpoint.js';
import { AddressRegistrar } from '../registrar.js';
import { randomIdGenerator, randomToken } from '../ids.js';
import { Room, type Member } from '../rooms.js';
import {
  ABORT_REASONS,
  type AbortCause,
  type ChatMessage,
  type ClientId,
  type LobbyEvents,
  type MediationOutcome,
} from './events.js';
import { TrackedTimers } from './timers.js';

export const LOBBY_ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const LOBBY_ID_LENGTH = 5;

/** User-facing conflict messages (HTTP 409 `errors`). */
export const CONFLICTS = {
  alreadyInLobbyCreate: 'The client is already in a lobby and cannot be the host of a new lobby.',
  alreadyInLobbyJoin: 'The client is already in a lobby and cannot join another.',
  lobbyMissing: (lobbyId: string) => `Lobby ${lobbyId} doesn't exist.`,
  lobbyLocked: 'The lobby is in the middle of peer-to-peer mediation and cannot be joined right now.',
  lobbyFull: 'The lobby is full.',
  nameTaken: 'The requested name is taken.',
  notHost: 'Only the host of the lobby can start peer-to-peer mediation.',
  mediationUnderWay: 'Peer-to-peer mediation is already under way for this lobby.',
  tooFewMembers: 'Peer-to-peer mediation needs at least 2 lobby members.',
  mediationUnavailable: 'Peer-to-peer mediation is not available on this server.',
  noLobbyIdLeft: 'The server could not allocate a lobby id. Try again later.',
} as const;

/** User-facing refusals by a server limit (HTTP 503 `errors`). */
export const UNAVAILABLE = {
  tooManyLobbies: 'The server has too many lobbies open. Try again later.',
} as const;

export interface MediationTiming {
  /** How long to wait for every member's UDP packet. */
  readonly serverConnectTimeoutMs: number;
  /** Interval of reminders to members whose UDP packet has not arrived. */
  readonly connectRequestIntervalMs: number;
  /** How long to wait for every member to report a direct connection. */
  readonly connectTimeoutMs: number;
}

export interface LobbyServiceOptions {
  readonly clock: Clock;
  readonly events: LobbyEvents;
  readonly timing: MediationTiming;
  /** False when there is no UDP port to collect addresses on: ptp/start is then refused. */
  readonly mediationAvailable?: boolean;
  /** Most lobbies at once; creating past it is refused as 'unavailable'. Default: no limit. */
  readonly maxLobbies?: number;
  readonly newLobbyId?: () => string;
  readonly newToken?: () => string;
}

export type LobbyResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: 'unregistered' }
  | { readonly ok: false; readonly error: 'conflict'; readonly messages: readonly string[] }
  | { readonly ok: false; readonly error: 'unavailable'; readonly messages: readonly string[] };

export interface CreateLobbyRequest {
  readonly hostName: string;
  readonly lobbyName: string;
  readonly isPublic: boolean;
  readonly maxMembers: number;
}

export interface PublicLobby {
  readonly name: string;
  readonly id: string;
  readonly currentMembers: number;
  readonly maxMembers: number;
}

export interface JoinedLobby {
  readonly lobbyId: string;
  readonly lobbyName: string;
  readonly lobbyMembers: readonly string[];
  readonly host: string;
}

/** A connected client: found by its secret token, or by its internal id as the public id. */
interface Client extends Session {
  readonly id: ClientId;
  lobby: Lobby | null;
  /** The client's place in its lobby's room; null when in no lobby. */
  seat: Member<LobbyMessage> | null;
  /** Name in the current lobby. */
  name: string;
}

/** What goes through a lobby's room; each member's seat turns it into a LobbyEvents call. */
type LobbyMessage =
  | { readonly kind: 'peerJoined' | 'peerLeft'; readonly peerName: string }
  | { readonly kind: 'chat'; readonly chat: ChatMessage }
  | { readonly kind: 'udpRequested' }
  | { readonly kind: 'peersStart'; readonly peers: readonly Endpoint[] }
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'aborted'; readonly reason: string };

interface Mediation {
  stage: 'collecting' | 'connecting';
  /** Members whose UDP address this attempt has captured (the addresses are in the registrar). */
  captured: number;
  readonly connected: Set<ClientId>;
  timers: Timer[];
}

interface Lobby {
  readonly id: string;
  readonly name: string;
  readonly isPublic: boolean;
  readonly maxMembers: number;
  readonly host: Client;
  /** Join order, host first (the spec's member lists and peers lists follow it). */
  readonly members: Client[];
  /** Fan-out to the members; closing it tells each remaining member lobby_closed. */
  readonly room: Room<LobbyMessage>;
  /** Non-null while mediation is under way: the lobby is then locked. */
  mediation: Mediation | null;
}

const MAX_LOBBY_ID_ATTEMPTS = 64;

/**
 * Clients, lobbies, chat and peer-to-peer mediation, with no knowledge of any wire format.
 * Every operation returns a result; nothing here throws on client input.
 */
export class LobbyService {
  private clients = new SessionDirectory<Client>();
  /** UDP addresses of members of collecting mediations, by token; forgotten when an attempt ends. */
  private addresses = this.newRegistrar();
  private readonly lobbies = new Map<string, Lobby>();
  private readonly timers: TrackedTimers;
  private readonly newLobbyId: () => string;
  private readonly newToken: () => string;
  private nextClientId: ClientId = 1;

  constructor(private readonly options: LobbyServiceOptions) {
    this.timers = new TrackedTimers(options.clock);
    this.newLobbyId = options.newLobbyId ?? randomIdGenerator(LOBBY_ID_ALPHABET, LOBBY_ID_LENGTH);
    this.newToken = options.newToken ?? randomToken;
  }

  counts(): { clients: number; lobbies: number; mediations: number; timers: number } {
    let mediations = 0;
    for (const lobby of this.lobbies.values()) if (lobby.mediation) mediations++;
    return { clients: this.clients.size, lobbies: this.lobbies.size, mediations, timers: this.timers.pending };
  }

  registerClient(): { id: ClientId; token: string } {
    const id = this.nextClientId++;
    let client: Client;
    do {
      client = { id, publicId: String(id), secret: this.newToken(), lobby: null, seat: null, name: '' };
    } while (!this.clients.add(client));
    return { id, token: client.secret };
  }

  /** The client is gone: it leaves its lobby (closing it if it was the host). */
  removeClient(id: ClientId): void {
    const client = this.clients.byPublicId(String(id));
    if (!client) return;
    this.leaveLobby(client);
    this.clients.remove(client);
  }

  /** The internal id of the client holding `token`, if any. */
  clientIdOf(token: string): ClientId | undefined {
    return this.clients.bySecret(token)?.id;
  }

  /** The id of the lobby the client is in, if any. */
  lobbyOf(id: ClientId): string | undefined {
    return this.clients.byPublicId(String(id))?.lobby?.id;
  }

  publicLobbies(): PublicLobby[] {
    const listed: PublicLobby[] = [];
    for (const lobby of this.lobbies.values()) {
      if (!lobby.isPublic) continue;
      listed.push({ name: lobby.name, id: lobby.id, currentMembers: lobby.members.length, maxMembers: lobby.maxMembers });
    }
    return listed;
  }

  createLobby(token: string, request: CreateLobbyRequest): LobbyResult<{ lobbyName: string; lobbyId: string }> {
    const client = this.clients.bySecret(token);
    if (!client) return { ok: false, error: 'unregistered' };
    if (client.lobby) return conflict(CONFLICTS.alreadyInLobbyCreate);
    if (this.lobbies.size >= (this.options.maxLobbies ?? Infinity)) {
      return { ok: false, error: 'unavailable', messages: [UNAVAILABLE.tooManyLobbies] };
    }
    const lobbyId = this.freshLobbyId();
    if (lobbyId === null) return conflict(CONFLICTS.noLobbyIdLeft);
    const lobby: Lobby = {
      id: lobbyId,
      name: request.lobbyName,
      isPublic: request.isPublic,
      maxMembers: request.maxMembers,
      host: client,
      members: [],
      room: new Room<LobbyMessage>(lobbyId, null),
      mediation: null,
    };
    this.lobbies.set(lobbyId, lobby);
    this.seat(client, lobby, request.hostName);
    return { ok: true, value: { lobbyName: lobby.name, lobbyId } };
  }

  joinLobby(token: string, lobbyId: string, peerName: string): LobbyResult<JoinedLobby> {
    const client = this.clients.bySecret(token);
    if (!client) return { ok: false, error: 'unregistered' };
    if (client.lobby) return conflict(CONFLICTS.alreadyInLobbyJoin);
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby) return conflict(CONFLICTS.lobbyMissing(lobbyId));
    if (lobby.mediation) return conflict(CONFLICTS.lobbyLocked);
    if (lobby.members.length >= lobby.maxMembers) return conflict(CONFLICTS.lobbyFull);
    if (lobby.members.some((member) => member.name === peerName)) return conflict(CONFLICTS.nameTaken);

    lobby.room.broadcast({ kind: 'peerJoined', peerName });
    this.seat(client, lobby, peerName);
    return {
      ok: true,
      value: {
        lobbyId: lobby.id,
        lobbyName: lobby.name,
        lobbyMembers: lobby.members.map((member) => member.name),
        host: lobby.host.name,
      },
    };
  }

  /** Chat from a member to every member of its lobby, sender included. False when ignored. */
  sendChat(token: string, lobbyId: string, message: string): boolean {
    const client = this.clients.bySecret(token);
    const lobby = client?.lobby;
    if (!client || !lobby || lobby.id !== lobbyId) return false;
    const chat = { timestamp: this.options.clock.now(), senderName: client.name, message };
    lobby.room.broadcast({ kind: 'chat', chat }, client.seat);
    return true;
  }

  startMediation(token: string, lobbyId: string): LobbyResult<void> {
    const client = this.clients.bySecret(token);
    if (!client) return { ok: false, error: 'unregistered' };
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby) return conflict(CONFLICTS.lobbyMissing(lobbyId));
    if (lobby.host !== client) return conflict(CONFLICTS.notHost);
    if (lobby.mediation) return conflict(CONFLICTS.mediationUnderWay);
    if (lobby.members.length < 2) return conflict(CONFLICTS.tooFewMembers);
    if (this.options.mediationAvailable === false) return conflict(CONFLICTS.mediationUnavailable);

    const { timing, events } = this.options;
    const mediation: Mediation = { stage: 'collecting', captured: 0, connected: new Set(), timers: [] };
    lobby.mediation = mediation;
    mediation.timers.push(
      this.timers.interval(() => {
        for (const member of lobby.members) {
          if (!this.addresses.endpointOf(member)) lobby.room.toId(member.publicId, { kind: 'udpRequested' });
        }
      }, timing.connectRequestIntervalMs),
      this.timers.timeout(() => this.abortMediation(lobby, 'serverConnectTimeout'), timing.serverConnectTimeoutMs),
    );
    events.mediationStarted?.(lobby.id, lobby.members.length);
    lobby.room.broadcast({ kind: 'udpRequested' });
    return { ok: true, value: undefined };
  }

  /**
   * A member's UDP packet arrived from `endpoint`. Accepted only while addresses are being
   * collected; a repeat before capture completes replaces the address (the NAT mapping may have changed).
   */
  recordUdpAddress(token: string, endpoint: Endpoint): boolean {
    const registration = this.addresses.register(token, endpoint);
    if (registration.outcome === 'unknown') return false;
    const lobby = registration.session.lobby;
    const mediation = lobby?.mediation;
    if (!lobby || !mediation) return false; // not reached: the registrar resolves only collecting members
    if (registration.outcome === 'registered') mediation.captured++;
    if (mediation.captured < lobby.members.length) return true;

    this.cancelTimers(mediation);
    mediation.stage = 'connecting';
    const { room, host } = lobby;
    const addressOf = (member: Client): Endpoint => this.addresses.endpointOf(member) as Endpoint;
    const others = lobby.members.filter((member) => member !== host);
    room.toId(host.publicId, { kind: 'peersStart', peers: others.map(addressOf) });
    const toHost = { kind: 'peersStart', peers: [addressOf(host)] } as const;
    for (const member of others) room.toId(member.publicId, toHost);
    const { timing } = this.options;
    mediation.timers.push(
      this.timers.timeout(() => this.abortMediation(lobby, 'connectTimeout'), timing.connectTimeoutMs),
    );
    return true;
  }

  /** A member reached its peers. Accepted only after peersConnection_start went out. */
  reportPeersConnected(token: string): boolean {
    const client = this.clients.bySecret(token);
    const lobby = client?.lobby;
    const mediation = lobby?.mediation;
    if (!client || !lobby || !mediation || mediation.stage !== 'connecting') return false;
    mediation.connected.add(client.id);
    if (mediation.connected.size < lobby.members.length) return true;

    this.endMediation(lobby, 'succeeded');
    lobby.room.broadcast({ kind: 'succeeded' });
    this.closeLobby(lobby);
    return true;
  }

  /** Cancels every timer and forgets every client and lobby, without notifying anyone. */
  dispose(): void {
    this.timers.cancelAll();
    for (const lobby of this.lobbies.values()) lobby.mediation = null;
    this.lobbies.clear();
    this.clients = new SessionDirectory<Client>();
    this.addresses = this.newRegistrar();
  }

  private leaveLobby(client: Client): void {
    const lobby = client.lobby;
    if (!lobby) return;
    client.lobby = null;
    this.addresses.forget(client);
    if (client.seat) lobby.room.leave(client.seat);
    client.seat = null;
    const index = lobby.members.indexOf(client);
    if (index >= 0) lobby.members.splice(index, 1);

    if (lobby.host === client) {
      this.endMediation(lobby, 'hostLeft');
      this.closeLobby(lobby);
      return;
    }
    lobby.room.broadcast({ kind: 'peerLeft', peerName: client.name });
    if (lobby.mediation) this.abortMediation(lobby, 'membersChanged');
  }

  private abortMediation(lobby: Lobby, cause: AbortCause): void {
    if (!this.endMediation(lobby, cause)) return;
    lobby.room.broadcast({ kind: 'aborted', reason: ABORT_REASONS[cause] });
  }

  /** Unlists the lobby; closing its room releases every remaining member with lobby_closed. */
  private closeLobby(lobby: Lobby): void {
    this.lobbies.delete(lobby.id);
    lobby.room.close();
    lobby.members.length = 0;
  }

  /** Puts the client in the lobby (last in join order) with a seat that speaks LobbyEvents. */
  private seat(client: Client, lobby: Lobby, name: string): void {
    const { events } = this.options;
    const to = client.id;
    const seat: Member<LobbyMessage> = {
      id: client.publicId,
      deliver(message) {
        switch (message.kind) {
          case 'peerJoined':
            return events.peerJoined(to, lobby.id, message.peerName);
          case 'peerLeft':
            return events.peerLeft(to, lobby.id, message.peerName);
          case 'chat':
            return events.chatReceived(to, lobby.id, message.chat);
          case 'udpRequested':
            return events.udpAddressRequested(to, lobby.id);
          case 'peersStart':
            return events.peersConnectionStart(to, message.peers);
          case 'succeeded':
            return events.mediationSucceeded(to);
          case 'aborted':
            return events.mediationAborted(to, message.reason);
        }
      },
      released() {
        client.lobby = null;
        client.seat = null;
        events.lobbyClosed(to, lobby.id, lobby.name);
      },
    };
    lobby.room.join(seat);
    lobby.members.push(client);
    client.lobby = lobby;
    client.seat = seat;
    client.name = name;
  }

  /**
   * Ends the lobby's mediation attempt, if any: timers cancelled, the lobby unlocked, the members'
   * addresses forgotten so that a next attempt captures them afresh. False if none was under way.
   */
  private endMediation(lobby: Lobby, outcome: MediationOutcome): boolean {
    const mediation = lobby.mediation;
    if (!mediation) return false;
    this.cancelTimers(mediation);
    lobby.mediation = null;
    for (const member of lobby.members) this.addresses.forget(member);
    this.options.events.mediationEnded?.(lobby.id, outcome);
    return true;
  }

  /** Resolves a token only for a member of a mediation that is collecting addresses. */
  private newRegistrar(): AddressRegistrar<Client> {
    return new AddressRegistrar<Client>((token) => {
      const client = this.clients.bySecret(token);
      return client?.lobby?.mediation?.stage === 'collecting' ? client : undefined;
    });
  }

  private cancelTimers(mediation: Mediation): void {
    for (const timer of mediation.timers) timer.cancel();
    mediation.timers = [];
  }

  private freshLobbyId(): string | null {
    for (let attempt = 0; attempt < MAX_LOBBY_ID_ATTEMPTS; attempt++) {
      const id = this.newLobbyId();
      if (!this.lobbies.has(id)) return id;
    }
    return null;
  }
}

function conflict(message: string): { ok: false; error: 'conflict'; messages: readonly string[] } {
  return { ok: false, error: 'conflict', messages: [message] };
}
