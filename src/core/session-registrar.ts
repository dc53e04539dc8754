import type { AddressBook, Recorded } from './address-book.js';
import type { SessionRecord, SessionStore } from './directory.js';
import type { Endpoint } from './endpoint.js';

export type SessionRegistration<S> = { readonly outcome: 'unknown' } | (Recorded & { readonly session: S });

/**
 * "This secret arrived from that UDP endpoint", over the store seams: finds the session by its
 * secret in the session store and records the endpoint in the address book under the session's id.
 */
export class SessionRegistrar<S extends SessionRecord> {
  constructor(
    private readonly sessions: SessionStore<S>,
    private readonly book: AddressBook,
  ) {}

  async register(secret: string, endpoint: Endpoint): Promise<SessionRegistration<S>> {
    if (secret === '') return { outcome: 'unknown' };
    const session = await this.sessions.bySecret(secret);
    if (session === undefined) return { outcome: 'unknown' };
    return { ...(await this.book.record(session.id, endpoint)), session };
  }
}
