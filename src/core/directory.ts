/** A session others reach by a public id and that proves itself with a secret. */
export interface Session {
  readonly publicId: string;
  readonly secret: string;
}

/** public id -> session and secret -> session, both O(1). */
export class SessionDirectory<S extends Session> {
  private readonly byPublic = new Map<string, S>();
  private readonly bySecretMap = new Map<string, S>();

  /** Adds the session; false if its public id or secret is already taken. */
  add(session: S): boolean {
    if (this.byPublic.has(session.publicId) || this.bySecretMap.has(session.secret)) return false;
    this.byPublic.set(session.publicId, session);
    this.bySecretMap.set(session.secret, session);
    return true;
  }

  /** Removes this very session (not another holding the same id); false if it was not listed. */
  remove(session: S): boolean {
    if (this.byPublic.get(session.publicId) !== session) return false;
    this.byPublic.delete(session.publicId);
    this.bySecretMap.delete(session.secret);
    return true;
  }

  byPublicId(publicId: string): S | undefined {
    return this.byPublic.get(publicId);
  }

  bySecret(secret: string): S | undefined {
    return this.bySecretMap.get(secret);
  }

  isTaken(publicId: string): boolean {
    return this.byPublic.has(publicId);
  }

  get size(): number {
    return this.byPublic.size;
  }
}
