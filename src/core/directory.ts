/** A session others reach by a public id and that proves itself with a secret. */
export interface Session {
  readonly publicId: string;
  readonly secret: string;
}

/** A session as shared stores hold it: with an id unique for its whole life, never reused. */
export interface SessionRecord extends Session {
  readonly id: string;
}

/**
 * The directory of sessions: public id -> session and secret -> session. Promise-returning so a
 * networked store can implement it; `claim` is one check-then-act step so it can be atomic there.
 */
export interface SessionStore<S extends SessionRecord> {
  /** Adds the session if neither its public id nor its secret is taken; false (and nothing changed) otherwise. */
  claim(session: S): Promise<boolean>;
  /** Removes this very session (matched by id, not another holding the same public id); false if it was not listed. */
  release(session: S): Promise<boolean>;
  byPublicId(publicId: string): Promise<S | undefined>;
  bySecret(secret: string): Promise<S | undefined>;
  /** A cluster's store: removes (and returns) the sessions a dead node claimed. Absent in one process. */
  purgeNode?(nodeId: string): Promise<S[]>;
}

/** The in-memory session store: both lookups O(1). */
export class MemorySessionStore<S extends SessionRecord> implements SessionStore<S> {
  private readonly byPublic = new Map<string, S>();
  private readonly bySecretMap = new Map<string, S>();

  async claim(session: S): Promise<boolean> {
    if (this.byPublic.has(session.publicId) || this.bySecretMap.has(session.secret)) return false;
    this.byPublic.set(session.publicId, session);
    this.bySecretMap.set(session.secret, session);
    return true;
  }

  async release(session: S): Promise<boolean> {
    if (this.byPublic.get(session.publicId)?.id !== session.id) return false;
    this.byPublic.delete(session.publicId);
    this.bySecretMap.delete(session.secret);
    return true;
  }

  async byPublicId(publicId: string): Promise<S | undefined> {
    return this.byPublic.get(publicId);
  }

  async bySecret(secret: string): Promise<S | undefined> {
    return this.bySecretMap.get(secret);
  }

  /** Sessions held (this store is one process's: every session is local). */
  get size(): number {
    return this.byPublic.size;
  }
}

