import type { Endpoint } from './endpoint.js';

export type Recorded =
  | { readonly outcome: 'registered' | 'repeat'; readonly endpoint: Endpoint }
  | { readonly outcome: 'moved'; readonly endpoint: Endpoint; readonly previous: Endpoint };

/**
 * "This session was last seen at that UDP endpoint", keyed by session id. The latest record wins,
 * so a client that registers again from a new socket is reached at its new port. `record` is one
 * read-and-write step so a networked store can make it atomic.
 */
export interface AddressBook {
  record(sessionId: string, endpoint: Endpoint): Promise<Recorded>;
  endpointOf(sessionId: string): Promise<Endpoint | undefined>;
  forget(sessionId: string): Promise<void>;
  /** A cluster's store: forgets the endpoints a dead node recorded (their session ids). Absent in one process. */
  purgeNode?(nodeId: string): Promise<string[]>;
}

export class MemoryAddressBook implements AddressBook {
  private readonly endpoints = new Map<string, Endpoint>();

  async record(sessionId: string, endpoint: Endpoint): Promise<Recorded> {
    const previous = this.endpoints.get(sessionId);
    if (previous && previous.address === endpoint.address && previous.port === endpoint.port) {
      return { outcome: 'repeat', endpoint: previous };
    }
    const stored = { address: endpoint.address, port: endpoint.port };
    this.endpoints.set(sessionId, stored);
    return previous ? { outcome: 'moved', endpoint: stored, previous } : { outcome: 'registered', endpoint: stored };
  }

  async endpointOf(sessionId: string): Promise<Endpoint | undefined> {
    return this.endpoints.get(sessionId);
  }

  async forget(sessionId: string): Promise<void> {
    this.endpoints.delete(sessionId);
  }

  get size(): number {
    return this.endpoints.size;
  }
}
