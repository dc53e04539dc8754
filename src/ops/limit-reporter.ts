import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { LimitReports, LimitSink } from '../core/limits/reporting.js';

const WINDOW_MS = 60_000;
const MAX_SOURCES_PER_WINDOW = 1000;

/**
 * Where a limit bites: counted in `noray_limit_rejections_total{front,reason}` and logged once per
 * source and reason per minute, with a bounded memory of who was logged.
 */
export class LimitReporter implements LimitReports {
  private readonly counter: Counter<'front' | 'reason'>;
  private logged = new Set<string>();
  private windowEnd = 0;
  private suppressed = 0;

  constructor(
    registry: Registry,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {
    const existing = registry.getSingleMetric('noray_limit_rejections_total');
    this.counter =
      (existing as Counter<'front' | 'reason'> | undefined) ??
      new Counter({
        name: 'noray_limit_rejections_total',
        help: 'Requests, connections or datagrams refused by a limit, by front and reason',
        labelNames: ['front', 'reason'],
        registers: [registry],
      });
  }

  forFront<R extends string>(front: string): LimitSink<R> {
    return { report: (reason, source) => this.report(front, reason, source) };
  }

  report(front: string, reason: string, source: string): void {
    this.counter.inc({ front, reason });
    const now = this.clock.now();
    if (now >= this.windowEnd) {
      if (this.suppressed > 0) this.logger.warn({ suppressed: this.suppressed }, 'limit reports suppressed in the last minute');
      this.logged = new Set();
      this.windowEnd = now + WINDOW_MS;
      this.suppressed = 0;
    }
    const key = `${front}|${reason}|${source}`;
    if (this.logged.has(key) || this.logged.size >= MAX_SOURCES_PER_WINDOW) {
      if (!this.logged.has(key)) this.suppressed++;
      return;
    }
    this.logged.add(key);
    this.logger.warn({ front, reason, source }, 'limit reached');
  }
}
