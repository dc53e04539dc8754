import type { Clock } from '../clock.js';

/** Most ids held in reserve at once; past it the oldest reservation ends early (memory stays bounded). */
export const MAX_RESERVATIONS = 50_000;

export type ReservationVerdict = 'free' | 'owner' | 'reserved';

/**
 * Ids freed by a disconnect, kept for their last owner for a grace period: in it, only a claimant
 * with the owner's proof (a secret, a source key) may take the id back. The map is kept in
 * insertion order, so expired entries are forgotten from its front in O(1) amortised per call.
 */
export class Reservations {
  private readonly held = new Map<string, { readonly proof: string; readonly until: number }>();

  constructor(
    private readonly graceMs: number,
    private readonly clock: Clock,
    private readonly max = MAX_RESERVATIONS,
  ) {}

  /** Keeps `id` for whoever shows `proof` until the grace period is over; a zero grace reserves nothing. */
  reserve(id: string, proof: string): void {
    if (this.graceMs <= 0) return;
    this.expire();
    this.held.delete(id);
    if (this.held.size >= this.max) {
      const oldest = this.held.keys().next();
      if (oldest.done !== true) this.held.delete(oldest.value);
    }
    this.held.set(id, { proof, until: this.clock.now() + this.graceMs });
  }

  /** Whether `proof` may take `id` now: free (nobody reserved it), owner (the proof matches) or reserved. */
  check(id: string, proof: string | undefined): ReservationVerdict {
    this.expire();
    const entry = this.held.get(id);
    if (entry === undefined) return 'free';
    return proof !== undefined && proof === entry.proof ? 'owner' : 'reserved';
  }

  /** The id was taken (by its owner): the reservation ends. */
  release(id: string): void {
    this.held.delete(id);
  }

  get size(): number {
    return this.held.size;
  }

  private expire(): void {
    const now = this.clock.now();
    for (const [id, entry] of this.held) {
      if (entry.until > now) return;
      this.held.delete(id);
    }
  }
}
