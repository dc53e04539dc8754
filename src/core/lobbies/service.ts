import type { Clock, Timer } from '../clock.js';
import { SessionDirectory, type Session } from '../directory.js';
import type { Endpoint } from '../endpoint.js';
import { randomIdGenerator, randomToken } from '../ids.js';
import { Room, type Member } from '../rooms.js';
import type { AbortCause, ChatMessage, ClientId, LobbyEvents, MediationOutcome } from './events.js';
import type { CreateLobbyError, JoinLobbyError, LobbyResult, StartMediationError } from './results.js';
import { TrackedTimers } from './timers.js';

export const LOBBY_ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const LOBBY_ID_LENGTH = 5;

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
  /** Most lobbies at once; creating past it is refused as 'tooManyLobbies'. Default: no limit. */
  readonly maxLobbies?: number;
  readonly newLobbyId?: () => string;
  readonly newToken?: () => string;
}

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
  /** A fresh array: the caller may keep it. */
  readonly lobbyMembers: string[];
  readonly host: string;
}

/** A connected client: found by its secret token, or by its internal id as the public id. */
interface Client extends Session {
  readonly clientId: ClientId;
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
  | { readonly kind: 'aborted'; readonly cause: AbortCause };

interface Mediation {
  stage: 'collecting' | 'connecting';
  /** The UDP address of each member this attempt has captured; a next attempt captures afresh. */
  readonly addresses: Map<ClientId, Endpoint>;
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
      client = { clientId: id, publicId: String(id), secret: this.newToken(), lobby: null, seat: null, name: '' };
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
    return this.clients.bySecret(token)?.clientId;
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

  createLobby(
    token: string,
    request: CreateLobbyRequest,
  ): LobbyResult<{ lobbyName: string; lobbyId: string }, CreateLobbyError> {
    const client = this.clients.bySecret(token);
    if (!client) return refused('unregistered');
    if (client.lobby) return refused('alreadyInLobby');
    if (this.lobbies.size >= (this.options.maxLobbies ?? Infinity)) return refused('tooManyLobbies');
    const lobbyId = this.freshLobbyId();
    if (lobbyId === null) return refused('noLobbyIdLeft');
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

  joinLobby(token: string, lobbyId: string, peerName: string): LobbyResult<JoinedLobby, JoinLobbyError> {
    const client = this.clients.bySecret(token);
    if (!client) return refused('unregistered');
    if (client.lobby) return refused('alreadyInLobby');
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby) return refused('lobbyMissing');
    if (lobby.mediation) return refused('lobbyLocked');
    if (lobby.members.length >= lobby.maxMembers) return refused('lobbyFull');
    if (lobby.members.some((member) => member.name === peerName)) return refused('nameTaken');

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

  startMediation(token: string, lobbyId: string): LobbyResult<void, StartMediationError> {
    const client = this.clients.bySecret(token);
    if (!client) return refused('unregistered');
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby) return refused('lobbyMissing');
    if (lobby.host !== client) return refused('notHost');
    if (lobby.mediation) return refused('mediationUnderWay');
    if (lobby.members.length < 2) return refused('tooFewMembers');
    if (this.options.mediationAvailable === false) return refused('mediationUnavailable');

    const { timing, events } = this.options;
    const mediation: Mediation = { stage: 'collecting', addresses: new Map(), connected: new Set(), timers: [] };
    lobby.mediation = mediation;
    mediation.timers.push(
      this.timers.interval(() => {
        for (const member of lobby.members) {
          if (!mediation.addresses.has(member.clientId)) lobby.room.toId(member.publicId, { kind: 'udpRequested' });
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
    const client = this.clients.bySecret(token);
    const lobby = client?.lobby;
    const mediation = lobby?.mediation;
    if (!client || !lobby || !mediation || mediation.stage !== 'collecting') return false;
    mediation.addresses.set(client.clientId, { address: endpoint.address, port: endpoint.port });
    if (mediation.addresses.size < lobby.members.length) return true;

    this.cancelTimers(mediation);
    mediation.stage = 'connecting';
    const { room, host } = lobby;
    const addressOf = (member: Client): Endpoint => mediation.addresses.get(member.clientId) as Endpoint;
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
    mediation.connected.add(client.clientId);
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
  }

  private leaveLobby(client: Client): void {
    const lobby = client.lobby;
    if (!lobby) return;
    client.lobby = null;
    lobby.mediation?.addresses.delete(client.clientId);
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
    lobby.room.broadcast({ kind: 'aborted', cause });
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
    const to = client.clientId;
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
            return events.mediationAborted(to, message.cause);
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
   * addresses dropped with it so that a next attempt captures them afresh. False if none was under way.
   */
  private endMediation(lobby: Lobby, outcome: MediationOutcome): boolean {
    const mediation = lobby.mediation;
    if (!mediation) return false;
    this.cancelTimers(mediation);
    lobby.mediation = null;
    this.options.events.mediationEnded?.(lobby.id, outcome);
    return true;
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

function refused<E extends string>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
