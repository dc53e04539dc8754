// The rooms of the message relays as shared state: who owns which code, who is a member under
// which id. Records hold ids only (connection ids and protocol ids); putting a message on a
// connection is the part of a Delivery (see delivery.ts), so the store can live in another process.
//
// Sync fast path: every method returns `Awaitable<T>`. A networked store (Redis) always returns a
// promise; the memory store answers at once, so a relayed message costs a few map lookups and no
// promise, no microtask hop and no closure. Callers handle both with one branch
// (`result instanceof Promise`), keep one sender's steps in order while a promise is pending, and
// the contract suite awaits everything, so both kinds of store pass the same tests.

export type Awaitable<T> = T | Promise<T>;

/** One membership: the connection (an id unique for its whole life, never reused) and the id the protocol shows. */
export interface RoomMember {
  readonly connection: string;
  readonly id: string;
}

export type OpenResult = 'opened' | 'taken' | 'full';
export type JoinResult = 'joined' | 'id-taken' | 'closed';

export interface OpenOptions {
  /** Refuse ('full') when this many rooms are open already; a taken code is still 'taken'. */
  readonly maxRooms?: number;
}

export interface JoinOptions {
  /** Refuse ('id-taken') when another connection holds the id in this room. Default: ids may repeat. */
  readonly uniqueIds?: boolean;
  /** Open the room without an owner if it is not open (a flat directory that is always open). */
  readonly openIfAbsent?: boolean;
}

export interface RoomCounts {
  readonly rooms: number;
  /** Members over all rooms, owners not counted. */
  readonly members: number;
}

/**
 * Rooms by code. Check-then-act steps are single operations (`open` is claim-if-absent, `join` is
 * join-if-room) so a networked store can make them atomic; removals name the connection, so a
 * stale caller never removes a successor that holds the same code or id.
 */
export interface RoomStore {
  /** Opens `code` owned by connection `owner` (null: no owner) if no room has it. */
  open(code: string, owner: string | null, options?: OpenOptions): Awaitable<OpenResult>;
  /**
   * Adds the member to the open room. A connection is a member at most once per room: joining
   * again under another id moves it to that id in the same step (its old id stays if refused).
   */
  join(code: string, member: RoomMember, options?: JoinOptions): Awaitable<JoinResult>;
  /** Removes this connection's membership; false if it held none (e.g. the room released it). */
  leave(code: string, connection: string): Awaitable<boolean>;
  /** Connections of the members (not the owner). May be a live view: iterate it at once, do not keep it. */
  members(code: string): Awaitable<Iterable<string>>;
  /** Connections of the members with this id (empty for an unknown id or room); a live view too. */
  membersWithId(code: string, id: string): Awaitable<Iterable<string>>;
  /** The owner's connection; undefined when the room is not open or has no owner. */
  owner(code: string): Awaitable<string | undefined>;
  /**
   * Closes the room if `owner` (null: no owner) still owns it, freeing the code; returns the
   * connections it released, which are members no more. Undefined if it is not open or owned by another.
   */
  close(code: string, owner: string | null): Awaitable<readonly string[] | undefined>;
  counts(): Awaitable<RoomCounts>;
  /**
   * A cluster's store: removes what a dead node's connections held (their memberships; the rooms
   * they owned are closed). Absent where every connection is this process's own.
   */
  purgeNode?(nodeId: string): Promise<PurgedRooms>;
}

/** What purgeNode removed: who must be told, as on each connection's disconnect. */
export interface PurgedRooms {
  /** Memberships the node's connections held in rooms that stay open. */
  readonly memberships: number;
  /** Those memberships: the room, the member's id and the room's owner (undefined: none). */
  readonly left: ReadonlyArray<{ readonly code: string; readonly id: string; readonly owner: string | undefined }>;
  /** Owned rooms the node opened, now closed, with the connections each released (of other nodes too). */
  readonly closed: ReadonlyArray<{ readonly code: string; readonly released: readonly string[] }>;
}

interface MemoryRoom {
  readonly owner: string | null;
  /** connection -> id */
  readonly members: Map<string, string>;
  /** id -> connections */
  readonly byId: Map<string, Set<string>>;
}

const NONE: ReadonlySet<string> = new Set();

/** The in-memory room store: one process's rooms, every answer synchronous and O(1) but close. */
export class MemoryRoomStore implements RoomStore {
  private readonly rooms = new Map<string, MemoryRoom>();
  private memberCount = 0;

  open(code: string, owner: string | null, options: OpenOptions = {}): OpenResult {
    if (this.rooms.has(code)) return 'taken';
    if (options.maxRooms !== undefined && this.rooms.size >= options.maxRooms) return 'full';
    this.rooms.set(code, { owner, members: new Map(), byId: new Map() });
    return 'opened';
  }

  join(code: string, member: RoomMember, options: JoinOptions = {}): JoinResult {
    let room = this.rooms.get(code);
    if (room === undefined) {
      if (options.openIfAbsent !== true) return 'closed';
      room = { owner: null, members: new Map(), byId: new Map() };
      this.rooms.set(code, room);
    }
    const { connection, id } = member;
    const current = room.members.get(connection);
    if (current === id) return 'joined';
    let holders = room.byId.get(id);
    if (holders !== undefined && options.uniqueIds === true) return 'id-taken';
    if (current !== undefined) this.remove(room, connection, current);
    if (holders === undefined) {
      holders = new Set();
      room.byId.set(id, holders);
    }
    holders.add(connection);
    room.members.set(connection, id);
    this.memberCount++;
    return 'joined';
  }

  leave(code: string, connection: string): boolean {
    const room = this.rooms.get(code);
    const id = room?.members.get(connection);
    if (room === undefined || id === undefined) return false;
    this.remove(room, connection, id);
    return true;
  }

  members(code: string): Iterable<string> {
    return this.rooms.get(code)?.members.keys() ?? NONE;
  }

  membersWithId(code: string, id: string): Iterable<string> {
    return this.rooms.get(code)?.byId.get(id) ?? NONE;
  }

  owner(code: string): string | undefined {
    return this.rooms.get(code)?.owner ?? undefined;
  }

  close(code: string, owner: string | null): readonly string[] | undefined {
    const room = this.rooms.get(code);
    if (room === undefined || room.owner !== owner) return undefined;
    this.rooms.delete(code);
    const released = [...room.members.keys()];
    this.memberCount -= released.length;
    // Cleared, not just dropped: a fan-out still iterating this room's live view stops here.
    room.members.clear();
    for (const holders of room.byId.values()) holders.clear();
    room.byId.clear();
    return released;
  }

  counts(): RoomCounts {
    return { rooms: this.rooms.size, members: this.memberCount };
  }

  private remove(room: MemoryRoom, connection: string, id: string): void {
    room.members.delete(connection);
    const holders = room.byId.get(id);
    if (holders !== undefined) {
      holders.delete(connection);
      if (holders.size === 0) room.byId.delete(id);
    }
    this.memberCount--;
  }
}
