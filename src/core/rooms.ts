// Message routing between the members of one group, within one process, with no knowledge of any
// wire format: a Member wraps a connection, the room decides who gets a message, the Member's
// deliver() puts it on the wire. Lobby chat still routes through it. State shared between
// processes does not belong here: the message relays keep their rooms in a RoomStore
// (room-store.ts), whose records hold ids and whose messages go through a Delivery.

/** One participant of a room. The same connection may appear as several Member objects over time. */
export interface Member<M> {
  readonly id: string;
  /** Puts a message on this member's connection. `sender` is null when the message has none. */
  deliver(message: M, sender: Member<M> | null): void;
  /** The room closed and released this member (it is no longer in the room). */
  released?(): void;
}

export interface RoomOptions {
  /** Refuse a join whose id another member already has (tcprelay). Default: ids may repeat. */
  readonly uniqueIds?: boolean;
}

export type JoinResult = 'joined' | 'id-taken' | 'closed';

export class Room<M> {
  private readonly members = new Set<Member<M>>();
  private readonly byId = new Map<string, Set<Member<M>>>();
  private isClosed = false;
  private failures = 0;

  constructor(
    readonly code: string,
    /** The member that to-owner messages reach; not part of broadcasts. Null for a flat directory. */
    readonly owner: Member<M> | null,
    private readonly options: RoomOptions = {},
    private readonly onClose?: (room: Room<M>) => void,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  /** Members (without the owner). */
  get size(): number {
    return this.members.size;
  }

  /** Deliveries whose deliver() threw; they are swallowed so one bad member cannot stop a fan-out. */
  get deliveryFailures(): number {
    return this.failures;
  }

  join(member: Member<M>): JoinResult {
    if (this.isClosed) return 'closed';
    if (this.members.has(member)) return 'joined';
    let holders = this.byId.get(member.id);
    if (holders !== undefined && holders.size > 0 && this.options.uniqueIds === true) return 'id-taken';
    if (holders === undefined) {
      holders = new Set();
      this.byId.set(member.id, holders);
    }
    holders.add(member);
    this.members.add(member);
    return 'joined';
  }

  /** Removes exactly this member object; false if it was not in the room (e.g. already released). */
  leave(member: Member<M>): boolean {
    if (!this.members.delete(member)) return false;
    const holders = this.byId.get(member.id);
    if (holders !== undefined) {
      holders.delete(member);
      if (holders.size === 0) this.byId.delete(member.id);
    }
    return true;
  }

  has(member: Member<M>): boolean {
    return this.members.has(member);
  }

  /** Whether some member has this id. */
  hasId(id: string): boolean {
    return this.byId.has(id);
  }

  /** Sends to every member; returns how many it reached. */
  broadcast(message: M, sender: Member<M> | null = null): number {
    let reached = 0;
    for (const member of this.members) if (this.deliver(member, message, sender)) reached++;
    return reached;
  }

  /** Sends to every member with this id; returns how many it reached (0 for an unknown id). */
  toId(id: string, message: M, sender: Member<M> | null = null): number {
    const holders = this.byId.get(id);
    if (holders === undefined) return 0;
    let reached = 0;
    for (const member of holders) if (this.deliver(member, message, sender)) reached++;
    return reached;
  }

  /** Sends to the owner, passing the sender along so the front can stamp it. */
  toOwner(message: M, sender: Member<M> | null): boolean {
    if (this.owner === null || this.isClosed) return false;
    return this.deliver(this.owner, message, sender);
  }

  /** Releases every member (each gets released()) and unregisters the room. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const released = [...this.members];
    this.members.clear();
    this.byId.clear();
    this.onClose?.(this);
    for (const member of released) {
      try {
        member.released?.();
      } catch {
        this.failures++;
      }
    }
  }

  private deliver(member: Member<M>, message: M, sender: Member<M> | null): boolean {
    try {
      member.deliver(message, sender);
      return true;
    } catch {
      this.failures++;
      return false;
    }
  }
}
