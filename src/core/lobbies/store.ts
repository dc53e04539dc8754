// The lobby state that processes share: clients, lobbies, their members and each lobby's mediation
// attempt. Promise-returning so a networked store can implement it; every check-then-act the
// service needs is one operation here so such a store can make it atomic. Records hold ids and
// plain values only, never sockets or closures: members are reached through a Delivery by id.
import type { Endpoint } from '../endpoint.js';
import type { ClientId } from './events.js';

/** A connected client: its id (unique for its life, also its delivery address) and its secret. */
export interface ClientRecord {
  readonly id: ClientId;
  readonly token: string;
  /** The lobby it is in; null when in none (a client is in at most one). */
  readonly lobbyId: string | null;
}

export interface MemberRecord {
  readonly clientId: ClientId;
  /** Unique within its lobby. */
  readonly name: string;
}

export type MediationStage = 'collecting' | 'connecting';

/** One mediation attempt of a lobby; while there is one the lobby is locked. */
export interface MediationRecord {
  /** Random id of this attempt, so that a timer of an earlier attempt cannot end a later one. */
  readonly attempt: string;
  readonly stage: MediationStage;
  /** The UDP address each member was seen at during this attempt, by client id. */
  readonly addresses: Readonly<Record<ClientId, Endpoint>>;
  /** Members that reported a direct connection, in report order. */
  readonly connected: readonly ClientId[];
}

export interface LobbyRecord {
  /** The id clients use (Orion: 5 characters from 0-9A-Z). */
  readonly id: string;
  readonly name: string;
  readonly isPublic: boolean;
  readonly maxMembers: number;
  readonly hostId: ClientId;
  /** Join order, host first. */
  readonly members: readonly MemberRecord[];
  readonly mediation: MediationRecord | null;
}

export interface NewLobby {
  readonly id: string;
  readonly name: string;
  readonly isPublic: boolean;
  readonly maxMembers: number;
  readonly hostId: ClientId;
  readonly hostName: string;
}

/** Checked in this order. `idTaken`: another lobby holds the id; the caller may retry with another. */
export type CreateOutcome =
  | { readonly ok: true; readonly lobby: LobbyRecord }
  | { readonly ok: false; readonly error: 'unregistered' | 'alreadyInLobby' | 'tooManyLobbies' | 'idTaken' };

/** Checked in this order. The lobby on success is as it is after the join (the joiner last). */
export type JoinOutcome =
  | { readonly ok: true; readonly lobby: LobbyRecord }
  | {
      readonly ok: false;
      readonly error: 'unregistered' | 'alreadyInLobby' | 'lobbyMissing' | 'lobbyLocked' | 'lobbyFull' | 'nameTaken';
    };

/** Checked in this order. The lobby on success holds the new attempt. */
export type StartOutcome =
  | { readonly ok: true; readonly lobby: LobbyRecord }
  | { readonly ok: false; readonly error: 'lobbyMissing' | 'notHost' | 'mediationUnderWay' | 'tooFewMembers' };

/**
 * A client left its lobby. `left`: a member left; `lobby` is as it is after, and `ended` is the
 * mediation attempt the leave cancelled (the lobby is then unlocked), if one was under way.
 * `closed`: the host left, so the lobby is deleted; `lobby` is its last state with the host
 * removed, and every remaining member is free again.
 */
export type Departure =
  | { readonly outcome: 'left'; readonly name: string; readonly lobby: LobbyRecord; readonly ended: MediationRecord | null }
  | { readonly outcome: 'closed'; readonly name: string; readonly lobby: LobbyRecord };

/** What a member's UDP address did: `complete` when it was the last one missing (the stage is then `connecting`). */
export type CaptureOutcome =
  | { readonly outcome: 'ignored' }
  | { readonly outcome: 'recorded' | 'complete'; readonly lobby: LobbyRecord };

/**
 * What a member's success report did: `succeeded` when every member has reported; the lobby is
 * then deleted (`lobby` is its last state) and its members are free again.
 */
export type ConnectedOutcome =
  | { readonly outcome: 'ignored' }
  | { readonly outcome: 'recorded' | 'succeeded'; readonly lobby: LobbyRecord };

export interface LobbyStore {
  /** Adds a client in no lobby if neither its id nor its token is taken; false (nothing changed) otherwise. */
  addClient(client: { readonly id: ClientId; readonly token: string }): Promise<boolean>;
  clientById(id: ClientId): Promise<ClientRecord | undefined>;
  clientByToken(token: string): Promise<ClientRecord | undefined>;
  /** Forgets the client, leaving its lobby first (as `leave`); undefined if it was not listed. */
  removeClient(id: ClientId): Promise<{ readonly departure: Departure | null } | undefined>;

  /** Creates the lobby with its host as only member if the host is free, `limit` is not reached and the id is free. */
  create(lobby: NewLobby, limit: number): Promise<CreateOutcome>;
  /** Seats the client last if it is free and the lobby exists, is not locked, has room and has no member of that name. */
  join(lobbyId: string, clientId: ClientId, name: string): Promise<JoinOutcome>;
  /** The client leaves its lobby; null when it is in none (or unknown). */
  leave(clientId: ClientId): Promise<Departure | null>;
  lobby(id: string): Promise<LobbyRecord | undefined>;
  /** Public lobbies, locked ones included, oldest first. */
  publicLobbies(): Promise<LobbyRecord[]>;
  /** Deletes the lobby, freeing its id and every member; its last state, or undefined if there was none. */
  delete(lobbyId: string): Promise<LobbyRecord | undefined>;

  /** Starts attempt `attempt` if `clientId` hosts the lobby, none is under way and it has at least 2 members. */
  startMediation(lobbyId: string, clientId: ClientId, attempt: string): Promise<StartOutcome>;
  /**
   * Records the client's address for its lobby's attempt while addresses are being collected (a
   * repeat replaces it); when it was the last one missing the attempt moves on to `connecting`.
   */
  captureAddress(clientId: ClientId, endpoint: Endpoint): Promise<CaptureOutcome>;
  /** Records the client's success report while its lobby's attempt is `connecting`; the last one deletes the lobby. */
  reportConnected(clientId: ClientId): Promise<ConnectedOutcome>;
  /** Ends attempt `attempt` of the lobby (unlocking it); the lobby as it is after, or undefined if that attempt was not under way. */
  endMediation(lobbyId: string, attempt: string): Promise<LobbyRecord | undefined>;
  /**
   * A cluster's store: removes a dead node's clients as removeClient does (their lobbies see them
   * leave, the lobbies they hosted close). Absent in one process.
   */
  purgeNode?(nodeId: string): Promise<Array<{ readonly clientId: ClientId; readonly departure: Departure | null }>>;
}

interface StoredMediation {
  readonly attempt: string;
  stage: MediationStage;
  readonly addresses: Map<ClientId, Endpoint>;
  readonly connected: Set<ClientId>;
}

interface StoredLobby {
  readonly id: string;
  readonly name: string;
  readonly isPublic: boolean;
  readonly maxMembers: number;
  readonly hostId: ClientId;
  readonly members: MemberRecord[];
  mediation: StoredMediation | null;
}

interface StoredClient {
  readonly id: ClientId;
  readonly token: string;
  lobbyId: string | null;
}

/**
 * The in-memory lobby store: every operation runs to its end without yielding, so each is atomic.
 * It hands out snapshots, never its own objects, and copies what it is given.
 */
export class MemoryLobbyStore implements LobbyStore {
  private readonly clients = new Map<ClientId, StoredClient>();
  private readonly byToken = new Map<string, StoredClient>();
  /** Insertion order is creation order. */
  private readonly lobbies = new Map<string, StoredLobby>();

  async addClient(client: { readonly id: ClientId; readonly token: string }): Promise<boolean> {
    if (this.clients.has(client.id) || this.byToken.has(client.token)) return false;
    const stored: StoredClient = { id: client.id, token: client.token, lobbyId: null };
    this.clients.set(stored.id, stored);
    this.byToken.set(stored.token, stored);
    return true;
  }

  async clientById(id: ClientId): Promise<ClientRecord | undefined> {
    const client = this.clients.get(id);
    return client && { ...client };
  }

  async clientByToken(token: string): Promise<ClientRecord | undefined> {
    const client = this.byToken.get(token);
    return client && { ...client };
  }

  async removeClient(id: ClientId): Promise<{ readonly departure: Departure | null } | undefined> {
    const client = this.clients.get(id);
    if (!client) return undefined;
    const departure = this.leaveNow(client);
    this.clients.delete(id);
    this.byToken.delete(client.token);
    return { departure };
  }

  async create(lobby: NewLobby, limit: number): Promise<CreateOutcome> {
    const host = this.clients.get(lobby.hostId);
    if (!host) return { ok: false, error: 'unregistered' };
    if (host.lobbyId !== null) return { ok: false, error: 'alreadyInLobby' };
    if (this.lobbies.size >= limit) return { ok: false, error: 'tooManyLobbies' };
    if (this.lobbies.has(lobby.id)) return { ok: false, error: 'idTaken' };
    const stored: StoredLobby = {
      id: lobby.id,
      name: lobby.name,
      isPublic: lobby.isPublic,
      maxMembers: lobby.maxMembers,
      hostId: host.id,
      members: [{ clientId: host.id, name: lobby.hostName }],
      mediation: null,
    };
    this.lobbies.set(stored.id, stored);
    host.lobbyId = stored.id;
    return { ok: true, lobby: snapshot(stored) };
  }

  async join(lobbyId: string, clientId: ClientId, name: string): Promise<JoinOutcome> {
    const client = this.clients.get(clientId);
    if (!client) return { ok: false, error: 'unregistered' };
    if (client.lobbyId !== null) return { ok: false, error: 'alreadyInLobby' };
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby) return { ok: false, error: 'lobbyMissing' };
    if (lobby.mediation) return { ok: false, error: 'lobbyLocked' };
    if (lobby.members.length >= lobby.maxMembers) return { ok: false, error: 'lobbyFull' };
    if (lobby.members.some((member) => member.name === name)) return { ok: false, error: 'nameTaken' };
    lobby.members.push({ clientId, name });
    client.lobbyId = lobby.id;
    return { ok: true, lobby: snapshot(lobby) };
  }

  async leave(clientId: ClientId): Promise<Departure | null> {
    const client = this.clients.get(clientId);
    return client ? this.leaveNow(client) : null;
  }

  async lobby(id: string): Promise<LobbyRecord | undefined> {
    const lobby = this.lobbies.get(id);
    return lobby && snapshot(lobby);
  }

  async publicLobbies(): Promise<LobbyRecord[]> {
    const listed: LobbyRecord[] = [];
    for (const lobby of this.lobbies.values()) if (lobby.isPublic) listed.push(snapshot(lobby));
    return listed;
  }

  async delete(lobbyId: string): Promise<LobbyRecord | undefined> {
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby) return undefined;
    const last = snapshot(lobby);
    this.deleteNow(lobby);
    return last;
  }

  async startMediation(lobbyId: string, clientId: ClientId, attempt: string): Promise<StartOutcome> {
    const lobby = this.lobbies.get(lobbyId);
    const error = startRefusal(lobby, clientId);
    if (error !== null || !lobby) return { ok: false, error: error ?? 'lobbyMissing' };
    lobby.mediation = { attempt, stage: 'collecting', addresses: new Map(), connected: new Set() };
    return { ok: true, lobby: snapshot(lobby) };
  }

  async captureAddress(clientId: ClientId, endpoint: Endpoint): Promise<CaptureOutcome> {
    const lobby = this.lobbyOfClient(clientId);
    const mediation = lobby?.mediation;
    if (!lobby || !mediation || mediation.stage !== 'collecting') return { outcome: 'ignored' };
    mediation.addresses.set(clientId, { address: endpoint.address, port: endpoint.port });
    if (mediation.addresses.size < lobby.members.length) return { outcome: 'recorded', lobby: snapshot(lobby) };
    mediation.stage = 'connecting';
    return { outcome: 'complete', lobby: snapshot(lobby) };
  }

  async reportConnected(clientId: ClientId): Promise<ConnectedOutcome> {
    const lobby = this.lobbyOfClient(clientId);
    const mediation = lobby?.mediation;
    if (!lobby || !mediation || mediation.stage !== 'connecting') return { outcome: 'ignored' };
    mediation.connected.add(clientId);
    if (mediation.connected.size < lobby.members.length) return { outcome: 'recorded', lobby: snapshot(lobby) };
    const last = snapshot(lobby);
    this.deleteNow(lobby);
    return { outcome: 'succeeded', lobby: last };
  }

  async endMediation(lobbyId: string, attempt: string): Promise<LobbyRecord | undefined> {
    const lobby = this.lobbies.get(lobbyId);
    if (!lobby || lobby.mediation?.attempt !== attempt) return undefined;
    lobby.mediation = null;
    return snapshot(lobby);
  }

  /** Lobbies held (this store is one process's). */
  get size(): number {
    return this.lobbies.size;
  }

  /** Clients held. */
  get clientCount(): number {
    return this.clients.size;
  }

  private lobbyOfClient(clientId: ClientId): StoredLobby | undefined {
    const lobbyId = this.clients.get(clientId)?.lobbyId;
    return lobbyId === undefined || lobbyId === null ? undefined : this.lobbies.get(lobbyId);
  }

  private leaveNow(client: StoredClient): Departure | null {
    const lobby = client.lobbyId === null ? undefined : this.lobbies.get(client.lobbyId);
    client.lobbyId = null;
    if (!lobby) return null;
    const index = lobby.members.findIndex((member) => member.clientId === client.id);
    const name = lobby.members[index]?.name ?? '';
    if (index >= 0) lobby.members.splice(index, 1);
    if (lobby.hostId === client.id) {
      const last = snapshot(lobby);
      this.deleteNow(lobby);
      return { outcome: 'closed', name, lobby: last };
    }
    const ended = lobby.mediation && snapshotMediation(lobby.mediation);
    lobby.mediation = null;
    return { outcome: 'left', name, lobby: snapshot(lobby), ended };
  }

  private deleteNow(lobby: StoredLobby): void {
    this.lobbies.delete(lobby.id);
    for (const member of lobby.members) {
      const client = this.clients.get(member.clientId);
      if (client?.lobbyId === lobby.id) client.lobbyId = null;
    }
  }
}

/**
 * Why `clientId` may not start mediation in `lobby`, in the order checked; null if it may. Every
 * store applies this rule inside its startMediation; a service without mediation applies it alone.
 */
export function startRefusal(
  lobby: { readonly hostId: ClientId; readonly members: readonly unknown[]; readonly mediation: unknown } | undefined,
  clientId: ClientId,
): Extract<StartOutcome, { ok: false }>['error'] | null {
  if (!lobby) return 'lobbyMissing';
  if (lobby.hostId !== clientId) return 'notHost';
  if (lobby.mediation) return 'mediationUnderWay';
  if (lobby.members.length < 2) return 'tooFewMembers';
  return null;
}

function snapshotMediation(mediation: StoredMediation): MediationRecord {
  const addresses: Record<ClientId, Endpoint> = {};
  for (const [id, endpoint] of mediation.addresses) addresses[id] = { address: endpoint.address, port: endpoint.port };
  return { attempt: mediation.attempt, stage: mediation.stage, addresses, connected: [...mediation.connected] };
}

function snapshot(lobby: StoredLobby): LobbyRecord {
  return {
    id: lobby.id,
    name: lobby.name,
    isPublic: lobby.isPublic,
    maxMembers: lobby.maxMembers,
    hostId: lobby.hostId,
    members: lobby.members.map((member) => ({ clientId: member.clientId, name: member.name })),
    mediation: lobby.mediation && snapshotMediation(lobby.mediation),
  };
}
