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

/** The part of prom-client's Histogram internals a collect() callback can set sum and count through. */
interface HistogramEntries {
  hashMap: Record<string, { sum: number; count: number } | undefined>;
}

/**
 * A histogram with only the +Inf bucket whose sum and count come from plain numbers: keeps a
 * histogram's name and its _sum/_count queries without observing on every packet.
 *
 * prom-client 15 renders a histogram through getForPromString() (Registry.metrics()) or get()
 * (getMetricsAsJSON()); both call collect() and then read the label-set entries in `hashMap`.
 * The public API can only add one observation at a time, so collect() recreates the unlabelled
 * entry with zero() and sets its sum and count. If a prom-client upgrade changes that shape the
 * scrape fails loudly instead of reading 0 forever.
 */
export function collectedSumCountHistogram(
  registry: Registry,
  name: string,
  help: string,
  read: () => { sum: number; count: number },
): Histogram {
  return new Histogram({
    name,
    help,
    buckets: [],
    registers: [registry],
    collect() {
      this.reset();
      this.zero({});
      const entries = Object.values((this as unknown as HistogramEntries).hashMap ?? {});
      const entry = entries[0];
      if (entries.length !== 1 || entry === undefined || typeof entry.sum !== 'number' || typeof entry.count !== 'number') {
        throw new Error(`${name}: prom-client's Histogram internals changed; collectedSumCountHistogram needs updating`);
      }
      const { sum, count } = read();
      entry.sum = sum;
      entry.count = count;
    },
  });
}
