import { Counter, Histogram, type Registry } from 'prom-client';

/** A counter whose value is read from a plain number on scrape (hot paths keep plain numbers). */
export function collectedCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number,
): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A labelled counter read on scrape: `read()` returns value per label value. */
export function collectedLabelledCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: L,
  read: () => Record<string, number>,
): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of Object.entries(read())) {
        this.inc({ [label]: value } as Record<L, string>, count);
      }
    },
  });
}

/**
 * A histogram with only the +Inf bucket whose sum and count come from plain numbers: keeps a
 * histogram's name and its _sum/_count queries without observing on every packet.
 */
export function collectedSumCountHistogram(
  registry: Registry,
  name: string,
  help: string,
  read: () => { sum: number; count: number },
): void {
  class SumCountHistogram extends Histogram {
    override async get() {
      const { sum, count } = read();
      const base = await super.get();
      return {
        ...base,
        values: [
          { labels: { le: '+Inf' }, value: count, metricName: `${name}_bucket` },
          { labels: {}, value: sum, metricName: `${name}_sum` },
          { labels: {}, value: count, metricName: `${name}_count` },
        ],
      };
    }
  }
  new SumCountHistogram({ name, help, buckets: [], registers: [registry] });
}
