import { randomUUID } from 'node:crypto';
import type { Clock, Timer } from '../clock.js';
import type { Delivery } from '../delivery.js';
import type { Endpoint } from '../endpoint.js';
import { randomIdGenerator, randomToken } from '../ids.js';
import type { AbortCause, ClientId, LobbyEvent, MediationObserver, MediationOutcome } from './events.js';
import type { CreateLobbyError, JoinLobbyError, LobbyResult, StartMediationError } from './results.js';
import { MemoryLobbyStore, startRefusal, type Departure, type LobbyRecord, type LobbyStore } from './store.js';
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
  /** Where each client's events go, by its ClientId. */
  readonly delivery: Delivery<LobbyEvent>;
  /** The shared lobby state. Default: a MemoryLobbyStore of this service's own. */
  readonly store?: LobbyStore;
  readonly observer?: MediationObserver;
  readonly timing: MediationTiming;
  /** False when there is no UDP port to collect addresses on: ptp/start is then refused. */
  readonly mediationAvailable?: boolean;
  /** Most lobbies at once; creating past it is refused as 'tooManyLobbies'. Default: no limit. */
  readonly maxLobbies?: number;
  readonly newLobbyId?: () => string;
  readonly newToken?: () => string;
  /** Ids of clients and mediation attempts. Default: random UUIDs. */
  readonly newId?: () => string;
  /** Work a timer started failed (a store that failed); default: ignored. */
  readonly onError?: (error: unknown) => void;
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

/** This process's part of a mediation attempt: its timers. What the attempt knows is in the store. */
interface LocalMediation {
  readonly attempt: string;
  timers: Timer[];
}

const MAX_LOBBY_ID_ATTEMPTS = 64;
const MAX_REGISTER_ATTEMPTS = 16;

/**
 * Clients, lobbies, chat and peer-to-peer mediation, with no knowledge of any wire format. The
 * state lives in a LobbyStore (each check-then-act one store operation); events reach clients
 * through the Delivery by id. Only the mediation timers, and the counts of what this process
 * started, are kept here. Every operation resolves to a result; nothing here throws on client input.
 */
/** The listing is rebuilt at least this often without changes seen here (another process may share the store). */
export const LISTING_MAX_AGE_MS = 1000;
/** Lobbies in the default `GET /lobbies` body; the rest are reachable with `?offset=&limit=`. */
export const MAX_LISTED_LOBBIES = 1000;

export interface PublicListing {
  /** Every public lobby, for paging. */
  readonly lobbies: readonly PublicLobby[];
  /** `{"lobbies":[...]}` with the first MAX_LISTED_LOBBIES of them. */
  readonly json: string;
}

export class LobbyService {
  private readonly store: LobbyStore;
  private readonly timers: TrackedTimers;
  private readonly newLobbyId: () => string;
  private readonly newToken: () => string;
  private readonly newId: () => string;
  /** Clients registered through this service and not yet removed. */
  private readonly clients = new Set<ClientId>();
  /** Open lobbies created through this service. */
  private readonly hosted = new Set<string>();
  /** Attempts whose timers run here, by lobby id. */
  private readonly mediations = new Map<string, LocalMediation>();
  /** Work started by timers, so that tests and shutdown can wait for it. */
  private readonly tasks = new Set<Promise<void>>();
  private disposed = false;
  private failures = 0;
  /** Bumped by every change made here that can change the public listing. */
  private listingVersion = 0;
  private listing: { readonly version: number; readonly builtAt: number; readonly value: PublicListing } | null = null;
  private listingBuild: Promise<PublicListing> | null = null;
  private listingBuildVersion = -1;

  constructor(private readonly options: LobbyServiceOptions) {
    this.store = options.store ?? new MemoryLobbyStore();
    this.timers = new TrackedTimers(options.clock);
    this.newLobbyId = options.newLobbyId ?? randomIdGenerator(LOBBY_ID_ALPHABET, LOBBY_ID_LENGTH);
    this.newToken = options.newToken ?? randomToken;
    this.newId = options.newId ?? randomUUID;
  }

  /** What this process holds: its clients, the lobbies they created, the mediations it times. */
  counts(): { clients: number; lobbies: number; mediations: number; timers: number } {
    return {
      clients: this.clients.size,
      lobbies: this.hosted.size,
      mediations: this.mediations.size,
      timers: this.timers.pending,
    };
  }

  /** Deliveries whose inbox threw; they are swallowed so one bad connection cannot stop a fan-out. */
  get deliveryFailures(): number {
    return this.failures;
  }

  /** Resolves once the work timers started (reminders, timeouts) has finished. */
  async settled(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
  }

  /** A new client with a fresh id and token. */
  async registerClient(): Promise<{ id: ClientId; token: string }> {
    for (let attempt = 1; ; attempt++) {
      const client = { id: this.newId(), token: this.newToken() };
      if (await this.store.addClient(client)) {
        this.clients.add(client.id);
        return client;
      }
      if (attempt >= MAX_REGISTER_ATTEMPTS) throw new Error('no free client id and token (is the id or token source broken?)');
    }
  }

  /** The client is gone: it leaves its lobby (closing it if it was the host). */
  async removeClient(id: ClientId): Promise<void> {
    const removed = await this.store.removeClient(id);
    this.listingVersion++;
    this.clients.delete(id);
    if (removed?.departure) this.departed(removed.departure);
  }

  /**
   * Another node of the cluster died: its clients leave their lobbies as on a disconnect (the
   * lobbies they hosted close), and the members here and on other live nodes are told.
   */
  async nodeGone(nodeId: string): Promise<void> {
    const purged = await this.store.purgeNode?.(nodeId);
    if (purged === undefined || purged.length === 0) return;
    this.listingVersion++;
    for (const { departure } of purged) if (departure) this.departed(departure);
  }

  /** The internal id of the client holding `token`, if any. */
  async clientIdOf(token: string): Promise<ClientId | undefined> {
    return (await this.store.clientByToken(token))?.id;
  }

  /** The id of the lobby the client is in, if any. */
  async lobbyOf(id: ClientId): Promise<string | undefined> {
    return (await this.store.clientById(id))?.lobbyId ?? undefined;
  }

  /**
   * The public lobbies and their JSON body, shared by every request: rebuilt lazily by the first
   * request after a change made through this service (a client sees its own create or join at
   * once, as Orion clients expect; changes are bounded by the rate limits, so rebuilds are too),
   * and at least every LISTING_MAX_AGE_MS (changes other processes make to a shared store).
   * Concurrent requests share one build; a flood of listings costs a string send each, not a
   * serialisation of up to 5000 lobbies.
   */
  publicListing(): Promise<PublicListing> {
    const now = this.options.clock.now();
    const cached = this.listing;
    if (cached !== null) {
      if (cached.version === this.listingVersion && now - cached.builtAt < LISTING_MAX_AGE_MS) return Promise.resolve(cached.value);
    }
    if (this.listingBuild !== null && this.listingBuildVersion === this.listingVersion) return this.listingBuild;
    const version = this.listingVersion;
    const build = this.publicLobbies().then((lobbies) => {
      const shown = lobbies.slice(0, MAX_LISTED_LOBBIES);
      const value: PublicListing = { lobbies, json: JSON.stringify({ lobbies: shown }) };
      this.listing = { version, builtAt: now, value };
      return value;
    });
    this.listingBuild = build;
    this.listingBuildVersion = version;
    const clear = (): void => {
      if (this.listingBuild === build) this.listingBuild = null;
    };
    build.then(clear, clear);
    return build;
  }

  async publicLobbies(): Promise<PublicLobby[]> {
    return (await this.store.publicLobbies()).map((lobby) => ({
      name: lobby.name,
      id: lobby.id,
      currentMembers: lobby.members.length,
      maxMembers: lobby.maxMembers,
    }));
  }

  async createLobby(
    token: string,
    request: CreateLobbyRequest,
  ): Promise<LobbyResult<{ lobbyName: string; lobbyId: string }, CreateLobbyError>> {
    const client = await this.store.clientByToken(token);
    if (!client) return refused('unregistered');
    const limit = this.options.maxLobbies ?? Number.POSITIVE_INFINITY;
    for (let attempt = 0; attempt < MAX_LOBBY_ID_ATTEMPTS; attempt++) {
      const created = await this.store.create(
        {
          id: this.newLobbyId(),
          name: request.lobbyName,
          isPublic: request.isPublic,
          maxMembers: request.maxMembers,
          hostId: client.id,
          hostName: request.hostName,
        },
        limit,
      );
      this.listingVersion++;
      if (created.ok) {
        this.hosted.add(created.lobby.id);
        return { ok: true, value: { lobbyName: created.lobby.name, lobbyId: created.lobby.id } };
      }
      if (created.error !== 'idTaken') return refused(created.error);
    }
    return refused('noLobbyIdLeft');
  }

  async joinLobby(token: string, lobbyId: string, peerName: string): Promise<LobbyResult<JoinedLobby, JoinLobbyError>> {
    const client = await this.store.clientByToken(token);
    if (!client) return refused('unregistered');
    const joined = await this.store.join(lobbyId, client.id, peerName);
    this.listingVersion++;
    if (!joined.ok) return refused(joined.error);
    const { lobby } = joined;
    const others = lobby.members.filter((member) => member.clientId !== client.id);
    this.send(others, { kind: 'peerJoined', lobbyId: lobby.id, peerName });
    return {
      ok: true,
      value: {
        lobbyId: lobby.id,
        lobbyName: lobby.name,
        lobbyMembers: lobby.members.map((member) => member.name),
        host: nameOf(lobby, lobby.hostId),
      },
    };
  }

  /** Chat from a member to every member of its lobby, sender included. False when ignored. */
  async sendChat(token: string, lobbyId: string, message: string): Promise<boolean> {
    const client = await this.store.clientByToken(token);
    if (!client || client.lobbyId !== lobbyId) return false;
    const lobby = await this.store.lobby(lobbyId);
    const sender = lobby?.members.find((member) => member.clientId === client.id);
    if (!lobby || !sender) return false;
    const chat = { timestamp: this.options.clock.now(), senderName: sender.name, message };
    this.send(lobby.members, { kind: 'chat', lobbyId: lobby.id, message: chat });
    return true;
  }

  async startMediation(token: string, lobbyId: string): Promise<LobbyResult<void, StartMediationError>> {
    const client = await this.store.clientByToken(token);
    if (!client) return refused('unregistered');
    if (this.options.mediationAvailable === false) {
      return refused(startRefusal(await this.store.lobby(lobbyId), client.id) ?? 'mediationUnavailable');
    }
    const attempt = this.newId();
    const started = await this.store.startMediation(lobbyId, client.id, attempt);
    this.listingVersion++;
    if (!started.ok) return refused(started.error);
    const { lobby } = started;
    const { timing, observer } = this.options;
    const local = this.localMediation(lobby.id, attempt);
    local.timers.push(
      this.timers.interval(() => this.background(this.remind(lobby.id, attempt)), timing.connectRequestIntervalMs),
      this.timers.timeout(() => this.timedOut(lobby.id, attempt, 'serverConnectTimeout'), timing.serverConnectTimeoutMs),
    );
    observer?.mediationStarted?.(lobby.id, lobby.members.length);
    this.send(lobby.members, { kind: 'udpRequested', lobbyId: lobby.id });
    return { ok: true, value: undefined };
  }

  /**
   * A member's UDP packet arrived from `endpoint`. Accepted only while addresses are being
   * collected; a repeat before capture completes replaces the address (the NAT mapping may have changed).
   */
  async recordUdpAddress(token: string, endpoint: Endpoint): Promise<boolean> {
    const client = await this.store.clientByToken(token);
    if (!client) return false;
    const captured = await this.store.captureAddress(client.id, endpoint);
    if (captured.outcome === 'ignored') return false;
    if (captured.outcome === 'recorded') return true;

    const { lobby } = captured;
    const mediation = lobby.mediation;
    if (!mediation) return true;
    const local = this.localMediation(lobby.id, mediation.attempt);
    this.cancelTimers(local);
    const addressOf = (clientId: ClientId): Endpoint => mediation.addresses[clientId] as Endpoint;
    const others = lobby.members.filter((member) => member.clientId !== lobby.hostId);
    this.send([{ clientId: lobby.hostId }], { kind: 'peersStart', peers: others.map((member) => addressOf(member.clientId)) });
    this.send(others, { kind: 'peersStart', peers: [addressOf(lobby.hostId)] });
    local.timers.push(
      this.timers.timeout(
        () => this.timedOut(lobby.id, mediation.attempt, 'connectTimeout'),
        this.options.timing.connectTimeoutMs,
      ),
    );
    return true;
  }

  /** A member reached its peers. Accepted only after peersConnection_start went out. */
  async reportPeersConnected(token: string): Promise<boolean> {
    const client = await this.store.clientByToken(token);
    if (!client) return false;
    const reported = await this.store.reportConnected(client.id);
    this.listingVersion++;
    if (reported.outcome === 'ignored') return false;
    if (reported.outcome === 'recorded') return true;

    const { lobby } = reported;
    this.endLocal(lobby, 'succeeded');
    this.send(lobby.members, { kind: 'succeeded' });
    this.closed(lobby);
    return true;
  }

  /** Cancels every timer and forgets this service's clients and lobbies, without notifying anyone. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.timers.cancelAll();
    this.mediations.clear();
    this.hosted.clear();
    const clients = [...this.clients];
    this.clients.clear();
    await Promise.all(clients.map((id) => this.store.removeClient(id)));
    this.listingVersion++;
    await this.settled();
  }

  private departed(departure: Departure): void {
    const { lobby } = departure;
    if (departure.outcome === 'closed') {
      this.endLocal(lobby, 'hostLeft');
      this.closed(lobby);
      return;
    }
    this.send(lobby.members, { kind: 'peerLeft', lobbyId: lobby.id, peerName: departure.name });
    if (departure.ended) {
      this.endLocal({ ...lobby, mediation: departure.ended }, 'membersChanged');
      this.send(lobby.members, { kind: 'aborted', cause: 'membersChanged' });
    }
  }

  /** The lobby was deleted: every member it had left gets lobby_closed. */
  private closed(lobby: LobbyRecord): void {
    this.hosted.delete(lobby.id);
    this.listingVersion++;
    this.send(lobby.members, { kind: 'lobbyClosed', lobbyId: lobby.id, lobbyName: lobby.name });
  }

  /** Reminds the members whose address this attempt has not captured yet. */
  private async remind(lobbyId: string, attempt: string): Promise<void> {
    const lobby = await this.store.lobby(lobbyId);
    const mediation = lobby?.mediation;
    if (!lobby || mediation?.attempt !== attempt || mediation.stage !== 'collecting') return;
    const missing = lobby.members.filter((member) => mediation.addresses[member.clientId] === undefined);
    this.send(missing, { kind: 'udpRequested', lobbyId });
  }

  private timedOut(lobbyId: string, attempt: string, cause: AbortCause): void {
    const local = this.mediations.get(lobbyId);
    if (local?.attempt === attempt) {
      this.cancelTimers(local);
      this.mediations.delete(lobbyId);
    }
    this.background(
      (async () => {
        const lobby = await this.store.endMediation(lobbyId, attempt);
        this.listingVersion++;
        if (!lobby) return;
        this.options.observer?.mediationEnded?.(lobbyId, cause);
        this.send(lobby.members, { kind: 'aborted', cause });
      })(),
    );
  }

  /** The entry for this attempt's timers, replacing one of an earlier attempt of the lobby. */
  private localMediation(lobbyId: string, attempt: string): LocalMediation {
    const existing = this.mediations.get(lobbyId);
    if (existing?.attempt === attempt) return existing;
    if (existing) this.cancelTimers(existing);
    const local: LocalMediation = { attempt, timers: [] };
    this.mediations.set(lobbyId, local);
    return local;
  }

  /** The lobby's attempt ended (the store says so): its timers stop and the observer hears how. */
  private endLocal(lobby: LobbyRecord, outcome: MediationOutcome): void {
    const mediation = lobby.mediation;
    if (!mediation) return;
    const local = this.mediations.get(lobby.id);
    if (local?.attempt === mediation.attempt) {
      this.cancelTimers(local);
      this.mediations.delete(lobby.id);
    }
    this.options.observer?.mediationEnded?.(lobby.id, outcome);
  }

  private cancelTimers(local: LocalMediation): void {
    for (const timer of local.timers) timer.cancel();
    local.timers = [];
  }

  /** Delivers to each recipient in order; a throwing inbox is counted and skipped. Nothing after dispose. */
  private send(to: readonly { readonly clientId: ClientId }[], event: LobbyEvent): void {
    if (this.disposed) return;
    for (const { clientId } of to) {
      try {
        this.options.delivery.deliver(clientId, event);
      } catch {
        this.failures++;
      }
    }
  }

  private background(task: Promise<void>): void {
    const tracked = task.catch((error: unknown) => this.options.onError?.(error));
    this.tasks.add(tracked);
    void tracked.finally(() => this.tasks.delete(tracked));
  }
}

function nameOf(lobby: LobbyRecord, clientId: ClientId): string {
  return lobby.members.find((member) => member.clientId === clientId)?.name ?? '';
}

function refused<E extends string>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
