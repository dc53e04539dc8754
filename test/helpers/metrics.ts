// One way for every test to read metrics: from a registry (in-process) or from Prometheus text.
import type { Registry } from 'prom-client';

/** Samples of Prometheus text by `name{label="value",...}` with labels sorted, so order does not matter. */
export function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = (match[2] ?? '').match(/\w+="(?:[^"\\]|\\.)*"/g) ?? [];
    samples.set(`${match[1]}${labels.length ? `{${labels.sort().join(',')}}` : ''}`, Number(match[3]));
  }
  return samples;
}

/** One sample's value in a registry (0 when it has no such sample yet), labels matched exactly. */
export async function sampleOf(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const wanted = Object.entries(labels);
  const { values } = await metric.get();
  const found = values.find((value) => wanted.every(([key, expected]) => String(value.labels[key]) === expected));
  return found?.value ?? 0;
}

/** `noray_limit_rejections_total{front,reason}`: how often a limit bit. */
export function rejections(registry: Registry, front: string, reason: string): Promise<number> {
  return sampleOf(registry, 'noray_limit_rejections_total', { front, reason });
}
