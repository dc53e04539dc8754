/**
 * What the dashboard stream sends: one snapshot a second. Types only: the page (web/dashboard)
 * imports them too, so nothing here may need Node.
 */

import type { FrontTable } from '../../fronts/inspection.js';

export interface SnapshotTable extends FrontTable {
  readonly front: string;
}

export interface SeriesPoint {
  /** Seconds since the epoch (uPlot's x). */
  readonly t: number;
  readonly packetsPerSecond: number;
  readonly bytesPerSecond: number;
  readonly cpuPercent: number;
}

export interface NodeRow {
  readonly nodeId: string;
  readonly at: number;
  readonly figures: Readonly<Record<string, number>>;
}

export interface DashboardSnapshot {
  readonly at: number;
  readonly node: {
    readonly id: string;
    readonly clustered: boolean;
    readonly uptimeSeconds: number;
    /** Whether end-session / close-room work here (only behind NORAY_OPS_TOKEN). */
    readonly actions: boolean;
  };
  readonly process: {
    readonly cpuPercent: number;
    readonly rssBytes: number;
    readonly heapUsedBytes: number;
    readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  };
  readonly fronts: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /**
   * The Prometheus series the page shows, exactly as /metrics has them at this instant, by
   * `name` or `name{label="value",...}` (labels sorted).
   */
  readonly metrics: Readonly<Record<string, number>>;
  readonly rates: { readonly packetsPerSecond: number; readonly bytesPerSecond: number };
  /** Pairs told to punch through, and how many of them then asked for a relay. */
  readonly punchthrough: { readonly pairs: number; readonly fallbacks: number };
  readonly tables: readonly SnapshotTable[];
  /** Every live node's figures when clustered (this one's included); empty alone. */
  readonly nodes: readonly NodeRow[];
  /** The most recent points, oldest first: the whole history in the first snapshot, then one each. */
  readonly series: readonly SeriesPoint[];
}

/** Limits on what a page may ask of the stream. */
export const MAX_SEARCH_LENGTH = 100;
export const ROWS_PER_TABLE = 200;
