import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { LimitReports } from '../core/limits/reporting.js';
import type { SharedState } from '../core/shared-state.js';
import type { Inspectable } from './inspection.js';

/** A protocol adapter: binds its sockets on start(), releases everything on stop(). */
export interface Front {
  readonly name: string;
  /** Binds every socket of the front; rejects if the front cannot serve. */
  start(): Promise<void>;
  /** Stops accepting, closes every connection and socket, cancels timers. Idempotent. */
  stop(): Promise<void>;
  /** Bound ports by role (e.g. { control: 8890, registrar: 8809 }), known after start(). */
  ports(): Record<string, number | number[]>;
  /** Counts of live state (connections, sessions, relays, lobbies, rooms...): for /health and leak tests. */
  stats(): Record<string, number>;
  /** Live tables and operator actions for the ops dashboard; absent when the front has none. */
  readonly inspection?: Inspectable;
}

/** What every front is built with. Fronts take only what they use from the config. */
export interface FrontDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly clock: Clock;
  /** Counts and logs (throttled) every refusal by a limit. */
  readonly limits: LimitReports;
  /** Where stores and deliveries live: this process, or a cluster's Redis. */
  readonly state: SharedState;
}
