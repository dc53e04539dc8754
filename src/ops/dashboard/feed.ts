import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Front } from '../../fronts/front.js';
import type { NodeBoard } from '../../core/node-board.js';
import { ThrottledLog } from '../../core/throttled-log.js';
import { ROWS_PER_TABLE, type DashboardSnapshot, type SeriesPoint, type SnapshotTable } from './snapshot.js';

/** The series the page shows, read from the registry so that its figures are /metrics' own. */
export const DASHBOARD_METRICS = [
  'noray_active_hosts',
  'noray_tcp_connections',
  'noray_relay_count',
  'noray_relay_ports_free',
  'noray_relay_packets_total',
  'noray_relay_bytes_total',
  'noray_relay_drop_count',
  'noray_limit_rejections_total',
  'noray_connect_pairs_total',
  'noray_connect_relay_fallbacks_total',
  'noray_lobby_lobbies',
  'noray_lobby_clients',
  'noray_lobby_mediations_active',
  'noray_wsrelay_rooms',
  'noray_wsrelay_clients',
  'noray_wsrelay_connections',
  'noray_tcprelay_connections',
  'noray_tcprelay_ids',
] as const;

const LOOP_DELAY_RESOLUTION_MS = 10;

/** `name` or `name{a="x",b="y"}` with labels sorted: how a series is named in a snapshot. */
export function seriesKey(name: string, labels: Partial<Record<string, string | number>>): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return name;
  return `${name}{${names.map((label) => `${label}="${String(labels[label])}"`).join(',')}}`;
}

async function readSeries(registry: Registry): Promise<Record<string, number>> {
  const series: Record<string, number> = {};
  for (const name of DASHBOARD_METRICS) {
    const metric = registry.getSingleMetric(name);
    if (!metric) continue;
    const { values } = await metric.get();
    for (const { labels, value } of values) series[seriesKey(name, labels)] = value;
  }
  return series;
}

/** CPU share and relay rates since the previous sample: each reader (the page feed, the board post) keeps its own. */
class RateSampler {
  private last: { at: number; cpu: NodeJS.CpuUsage; packets: number; bytes: number } | null = null;

  sample(at: number, packets: number, bytes: number): { cpuPercent: number; packetsPerSecond: number; bytesPerSecond: number } {
    const cpu = process.cpuUsage();
    const last = this.last;
    this.last = { at, cpu, packets, bytes };
    if (!last || at <= last.at) return { cpuPercent: 0, packetsPerSecond: 0, bytesPerSecond: 0 };
    const seconds = (at - last.at) / 1000;
    const cpuMicros = cpu.user - last.cpu.user + (cpu.system - last.cpu.system);
    return {
      cpuPercent: round(cpuMicros / 1e4 / seconds, 1),
      packetsPerSecond: round(Math.max(0, packets - last.packets) / seconds, 1),
      bytesPerSecond: round(Math.max(0, bytes - last.bytes) / seconds, 0),
    };
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** One open page: what it searches for, and where its snapshots go. */
export interface DashboardSubscriber {
  readonly search: string;
  /** Sends one serialized snapshot; false when the page is not keeping up (the snapshot is skipped). */
  send(data: string): boolean;
}

export interface DashboardFeedOptions {
  readonly fronts: () => readonly Front[];
  readonly metrics: Registry;
  readonly board: NodeBoard;
  readonly nodeId: string;
  readonly clustered: boolean;
  readonly startedAt: number;
  /** Whether operator actions are enabled (NORAY_OPS_TOKEN is set). */
  readonly actions: boolean;
  readonly logger: Logger;
  readonly intervalMs?: number;
  /** Points of chart history kept while a page is open. */
  readonly historyPoints?: number;
  /** Pages served at once; more are refused (each costs a snapshot a second). */
  readonly maxSubscribers?: number;
  /** How often a clustered node posts its figures to the board (its heartbeat). */
  readonly postIntervalMs?: number;
}

/**
 * Builds a snapshot a second while at least one page is open, and nothing while none is (an open
 * page costs the server; a closed one costs nothing but, clustered, the board post).
 */
export class DashboardFeed {
  private readonly subscribers = new Map<DashboardSubscriber, { sentHistory: boolean }>();
  private readonly history: SeriesPoint[] = [];
  private readonly sampler = new RateSampler();
  private readonly postSampler = new RateSampler();
  private readonly failures = new ThrottledLog();
  private timer: NodeJS.Timeout | null = null;
  private postTimer: NodeJS.Timeout | null = null;
  private loopDelay: IntervalHistogram | null = null;
  private ticking = false;

  constructor(private readonly options: DashboardFeedOptions) {}

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Adds a page; returns its unsubscribe, or null when as many pages as allowed are open. */
  subscribe(subscriber: DashboardSubscriber): (() => void) | null {
    if (this.subscribers.size >= (this.options.maxSubscribers ?? 16)) return null;
    this.subscribers.set(subscriber, { sentHistory: false });
    if (!this.timer) {
      this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
      this.loopDelay.enable();
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs ?? 1000);
      this.timer.unref();
    }
    // The first snapshot at once: a page shows figures as soon as it opens.
    void this.tick();
    return () => this.unsubscribe(subscriber);
  }

  /** Clustered: posts this node's figures to the board until stop(). */
  startPosting(): void {
    if (!this.options.clustered || this.postTimer) return;
    const post = () => void this.post();
    post();
    this.postTimer = setInterval(post, this.options.postIntervalMs ?? 2000);
    this.postTimer.unref();
  }

  stop(): void {
    if (this.postTimer) clearInterval(this.postTimer);
    this.postTimer = null;
    for (const subscriber of [...this.subscribers.keys()]) this.unsubscribe(subscriber);
  }

  private unsubscribe(subscriber: DashboardSubscriber): void {
    if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.loopDelay?.disable();
    this.loopDelay = null;
    this.history.length = 0;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.subscribers.size === 0) return;
    this.ticking = true;
    try {
      const snapshot = await this.base();
      this.history.push(...snapshot.series);
      const keep = this.options.historyPoints ?? 120;
      if (this.history.length > keep) this.history.splice(0, this.history.length - keep);
      // Pages searching for the same text share one table build.
      const tablesBySearch = new Map<string, Promise<readonly SnapshotTable[]>>();
      for (const [subscriber, state] of this.subscribers) {
        let tables = tablesBySearch.get(subscriber.search);
        if (!tables) tablesBySearch.set(subscriber.search, (tables = this.tables(subscriber.search)));
        const series = state.sentHistory ? snapshot.series : [...this.history];
        const data = JSON.stringify({ ...snapshot, tables: await tables, series });
        if (!this.subscribers.has(subscriber)) continue;
        // A page that did not get it (too slow to read) gets the whole history with the next one.
        if (subscriber.send(data)) state.sentHistory = true;
      }
    } catch (error) {
      this.failures.report((skipped) => this.options.logger.warn({ err: error, skipped }, 'dashboard snapshot failed'));
    } finally {
      this.ticking = false;
    }
  }

  /** Everything but the tables, which depend on each page's search. */
  private async base(): Promise<DashboardSnapshot> {
    const { options } = this;
    const at = Date.now();
    const metrics = await readSeries(options.metrics);
    const packets = metrics.noray_relay_packets_total ?? 0;
    const bytes = metrics.noray_relay_bytes_total ?? 0;
    const rates = this.sampler.sample(at, packets, bytes);
    const memory = process.memoryUsage();
    const delay = this.loopDelay;
    // The histogram records whole sampling intervals: the delay is what exceeds the resolution.
    const ms = (ns: number) => round(Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS), 2);
    const eventLoopDelayMs =
      delay && delay.count > 0 ? { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) } : { p50: 0, p99: 0, max: 0 };
    delay?.reset();
    const fronts = Object.fromEntries(options.fronts().map((front) => [front.name, front.stats()]));
    const nodes = options.clustered ? await options.board.read().catch(() => []) : [];
    return {
      at,
      node: {
        id: options.nodeId,
        clustered: options.clustered,
        uptimeSeconds: Math.round((at - options.startedAt) / 1000),
        actions: options.actions,
      },
      process: { cpuPercent: rates.cpuPercent, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, eventLoopDelayMs },
      fronts,
      metrics,
      rates: { packetsPerSecond: rates.packetsPerSecond, bytesPerSecond: rates.bytesPerSecond },
      punchthrough: {
        pairs: metrics.noray_connect_pairs_total ?? 0,
        fallbacks: metrics.noray_connect_relay_fallbacks_total ?? 0,
      },
      tables: [],
      nodes,
      series: [{ t: at / 1000, packetsPerSecond: rates.packetsPerSecond, bytesPerSecond: rates.bytesPerSecond, cpuPercent: rates.cpuPercent }],
    };
  }

  private async tables(search: string): Promise<readonly SnapshotTable[]> {
    const query = { search, limit: ROWS_PER_TABLE };
    const perFront = await Promise.all(
      this.options.fronts().map(async (front) => {
        const tables = (await front.inspection?.tables(query)) ?? [];
        return tables.map((table) => ({ front: front.name, ...table }));
      }),
    );
    return perFront.flat();
  }

  /** This node's headline figures on the board, for the other nodes' pages. */
  private async post(): Promise<void> {
    const { options } = this;
    try {
      const at = Date.now();
      const metrics = await readSeries(options.metrics);
      const rates = this.postSampler.sample(at, metrics.noray_relay_packets_total ?? 0, metrics.noray_relay_bytes_total ?? 0);
      const figures: Record<string, number> = { ...rates, rssBytes: process.memoryUsage().rss };
      for (const front of options.fronts()) {
        for (const [name, value] of Object.entries(front.stats())) figures[`${front.name}.${name}`] = value;
      }
      await options.board.post({ nodeId: options.nodeId, at, figures });
    } catch (error) {
      this.failures.report((skipped) => options.logger.warn({ err: error, skipped }, 'posting dashboard figures failed'));
    }
  }
}
