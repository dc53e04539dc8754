// A RoomStore that answers like a networked one: every call returns a promise and takes a few
// event-loop turns each way, a random number, so calls made one after the other may settle in
// another order. Each call is atomic at the memory store inside, as it would be at a real server.
// Used by the room store contract suite and by the routers' tests of their promise path.
import {
  MemoryRoomStore,
  type JoinOptions,
  type JoinResult,
  type OpenOptions,
  type OpenResult,
  type RoomCounts,
  type RoomMember,
  type RoomStore,
} from '../../src/core/room-store.js';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class PromisedRoomStore implements RoomStore {
  /** Calls made and not settled yet. */
  inFlight = 0;

  constructor(
    readonly inner = new MemoryRoomStore(),
    private readonly maxTurns = 3,
  ) {}

  open(code: string, owner: string | null, options?: OpenOptions): Promise<OpenResult> {
    return this.call(() => this.inner.open(code, owner, options));
  }

  join(code: string, member: RoomMember, options?: JoinOptions): Promise<JoinResult> {
    // Sent over the wire: the store must not rely on the object it was given.
    const copy = { connection: member.connection, id: member.id };
    return this.call(() => this.inner.join(code, copy, options));
  }

  leave(code: string, connection: string): Promise<boolean> {
    return this.call(() => this.inner.leave(code, connection));
  }

  members(code: string): Promise<Iterable<string>> {
    return this.call(() => [...this.inner.members(code)]);
  }

  membersWithId(code: string, id: string): Promise<Iterable<string>> {
    return this.call(() => [...this.inner.membersWithId(code, id)]);
  }

  owner(code: string): Promise<string | undefined> {
    return this.call(() => this.inner.owner(code));
  }

  close(code: string, owner: string | null): Promise<readonly string[] | undefined> {
    return this.call(() => this.inner.close(code, owner));
  }

  counts(): Promise<RoomCounts> {
    return this.call(() => this.inner.counts());
  }

  /** Resolves once no call is in flight (the routers' steps chained on them have run by then, too). */
  async settled(): Promise<void> {
    // A few extra turns: what a settled call triggers (the next chained call) starts a turn later.
    for (let quiet = 0; quiet < 3; ) {
      await turn();
      quiet = this.inFlight === 0 ? quiet + 1 : 0;
    }
  }

  private async call<T>(operation: () => T): Promise<T> {
    this.inFlight++;
    try {
      await this.wait();
      const result = operation();
      await this.wait();
      return result;
    } finally {
      this.inFlight--;
    }
  }

  private async wait(): Promise<void> {
    const turns = Math.floor(Math.random() * (this.maxTurns + 1));
    for (let i = 0; i < turns; i++) await turn();
  }
}
