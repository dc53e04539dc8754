import type { Endpoint } from '../endpoint.js';
import { DROP, type Player } from './relay.js';

/**
 * Which source a datagram on a relay port may be learned as, when it is not a known one.
 *
 * Behind a symmetric NAT a player's datagrams to a relay port leave from another external port
 * than the one the registrar saw, and its NAT lets in only datagrams from the server port it sent
 * to. So a datagram arriving on a relay port from the registered IP of exactly one of the peers
 * allowed there (any port) is that peer's traffic, and the peer is answered at that source.
 *
 * The rule keeps a stranger behind the same public IP (a carrier NAT) from taking a lane over:
 * - only a lane's own receiver port learns, and only from the sender's registered IP;
 * - a lane heard from within `relearnAfterMs` is locked: other sources are dropped
 *   (`mapping_locked`); after that much silence (a NAT rebinding) the next source is learned;
 * - a source that is another player's registered endpoint, or already learned for another
 *   player, is never learned: one source never feeds two players;
 * - two peers behind one IP never share a relay port (the engine allocates per pair then), so
 *   the sender of a learned source is never ambiguous.
 * - the registered endpoint itself always wins: heard on a lane that learned another source, it
 *   replaces it, so a stranger who spoke first is cut off as soon as the player speaks.
 * Re-registration through the registrar (which proves the PrivateID) resets a player's lanes.
 */
export interface MappingRules {
  readonly relearnAfterMs: number;
}

/** Who holds a source already: a registered endpoint, or a source learned for a player. */
export type SourceOwner<P = Player> = (source: Endpoint) => P | undefined;

/** What the rule reads of a lane; both engines' lanes have it (relay.ts, native-engine.ts). */
export interface MappingLane<P extends { readonly endpoint: Endpoint }> {
  readonly sender: P;
  readonly heardAt: number;
}

/** The lane a new source on `relay` belongs to, or the DROP index that refuses it. */
export function laneForNewSource<P extends { readonly endpoint: Endpoint }, L extends MappingLane<P>>(
  relay: { readonly lanes: readonly L[] },
  source: Endpoint,
  now: number,
  rules: MappingRules,
  ownerOf: SourceOwner<P>,
): L | number {
  let match: L | undefined;
  for (const lane of relay.lanes) {
    if (lane.sender.endpoint.address !== source.address) continue;
    if (match !== undefined) return DROP.no_permission;
    match = lane;
  }
  if (match === undefined) return DROP.no_permission;
  const owner = ownerOf(source);
  if (owner !== undefined && owner !== match.sender) return DROP.no_permission;
  if (now - match.heardAt < rules.relearnAfterMs) return DROP.mapping_locked;
  return match;
}

/**
 * A relay of `owner` that `sender` can send to without being confused with another peer: one
 * where no other sender has the same IP. Null means a relay of its own is needed.
 */
export function shareableRelay<P extends { readonly endpoint: Endpoint }, R extends { readonly lanes: readonly MappingLane<P>[] }>(
  owner: { readonly relays: readonly R[] },
  sender: P,
): R | null {
  for (const relay of owner.relays) {
    if (!relay.lanes.some((lane) => lane.sender.endpoint.address === sender.endpoint.address)) return relay;
  }
  return null;
}
