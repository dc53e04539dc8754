import type { Endpoint } from './endpoint.js';

export type Registration<S> =
  | { readonly outcome: 'unknown' }
  | { readonly outcome: 'registered' | 'repeat'; readonly session: S; readonly endpoint: Endpoint }
  | { readonly outcome: 'moved'; readonly session: S; readonly endpoint: Endpoint; readonly previous: Endpoint };

/**
 * "This secret arrived from that UDP endpoint." The latest registration wins, so a client
 * that registers again from a new socket is reached at its new port.
 */
export class AddressRegistrar<S> {
  private readonly endpoints = new Map<S, Endpoint>();

  constructor(private readonly resolveSecret: (secret: string) => S | undefined) {}

  register(secret: string, endpoint: Endpoint): Registration<S> {
    const session = this.resolveSecret(secret);
    if (session === undefined) return { outcome: 'unknown' };
    const previous = this.endpoints.get(session);
    if (previous && previous.address === endpoint.address && previous.port === endpoint.port) {
      return { outcome: 'repeat', session, endpoint: previous };
    }
    const stored = { address: endpoint.address, port: endpoint.port };
    this.endpoints.set(session, stored);
    if (previous) return { outcome: 'moved', session, endpoint: stored, previous };
    return { outcome: 'registered', session, endpoint: stored };
  }

  endpointOf(session: S): Endpoint | undefined {
    return this.endpoints.get(session);
  }

  forget(session: S): void {
    this.endpoints.delete(session);
  }

  get size(): number {
    return this.endpoints.size;
  }
}
