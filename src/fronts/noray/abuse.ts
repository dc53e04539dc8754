// What keeps one player's requests from hurting another: connect notifications rate-limited and
// coalesced, OpenID guessing slowed, custom OpenIDs kept for their owner after a disconnect.
import type { Clock } from '../../core/clock.js';
import { Reservations } from '../../core/limits/reservations.js';
import { sourceKey } from '../../core/limits/source-key.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';

export interface NorayAbuseOptions {
  /** A custom OpenID freed by a disconnect is kept this long for the holder of its last PrivateID. */
  readonly oidReservationMs: number;
  /** connect/connect-relay requests per second (and at once) one control connection may send. */
  readonly connectRate: number;
  readonly connectBurst: number;
  /** connect/connect-relay notifications per second (and at once) one host may receive. */
  readonly connectHostRate: number;
  readonly connectHostBurst: number;
  /** An identical notification to the same host within this window is sent once. */
  readonly connectCoalesceMs: number;
  /** connect/connect-relay to unknown OpenIDs per second (and at once) from one source IP. */
  readonly unknownOidRate: number;
  readonly unknownOidBurst: number;
}

/** The option defaults, for handlers built without a config (tests). */
export const DEFAULT_ABUSE_OPTIONS: NorayAbuseOptions = {
  oidReservationMs: 30_000,
  connectRate: 10,
  connectBurst: 20,
  connectHostRate: 50,
  connectHostBurst: 100,
  connectCoalesceMs: 1000,
  unknownOidRate: 5,
  unknownOidBurst: 20,
};

/** What happens to one notification to a host. */
export type NotifyVerdict = 'send' | 'coalesced' | 'host_rate';

export class NorayAbuseGuard {
  readonly reservations: Reservations;
  private readonly requesters: SourceRateLimiter;
  private readonly hosts: SourceRateLimiter;
  private readonly unknown: SourceRateLimiter;
  private readonly recent: Reservations;

  constructor(options: NorayAbuseOptions, clock: Clock) {
    this.reservations = new Reservations(options.oidReservationMs, clock);
    this.requesters = new SourceRateLimiter(options.connectRate, options.connectBurst, clock);
    this.hosts = new SourceRateLimiter(options.connectHostRate, options.connectHostBurst, clock);
    this.unknown = new SourceRateLimiter(options.unknownOidRate, options.unknownOidBurst, clock);
    this.recent = new Reservations(options.connectCoalesceMs, clock);
  }

  /** One connect/connect-relay request of a control connection; false when it is over its rate. */
  request(connection: string): boolean {
    return this.requesters.take(connection);
  }

  /** One connect/connect-relay to an unknown OpenID from `remote` (`IP:PORT`); false when over the rate. */
  unknownOid(remote: string): boolean {
    return this.unknown.take(sourceKey(ipOf(remote)));
  }

  /**
   * Whether a notification to `host` goes out: an identical one (`what`) within the coalescing
   * window is not sent again and costs the host nothing; past the host's rate nothing is sent.
   */
  notify(host: string, what: string): NotifyVerdict {
    const key = `${host}\n${what}`;
    if (this.recent.check(key, undefined) !== 'free') return 'coalesced';
    if (!this.hosts.take(host)) return 'host_rate';
    this.recent.reserve(key, '');
    return 'send';
  }
}

/** The IP of `IP:PORT` (IPv6 addresses have colons of their own); a remote without a port as it is. */
function ipOf(remote: string): string {
  const colon = remote.lastIndexOf(':');
  return colon > 0 ? remote.slice(0, colon) : remote;
}

/** `register-host` data: `ID` or `ID OLDPID` (the last PrivateID of ID, to take a reserved ID back). */
export function splitRegistration(data: string): { readonly oid: string; readonly proof: string | undefined } {
  const space = data.indexOf(' ');
  if (space < 0) return { oid: data, proof: undefined };
  const proof = data.slice(space + 1).trim();
  return { oid: data.slice(0, space), proof: proof === '' ? undefined : proof };
}
