// docs/grafana-dashboard.json: importable, and every series it queries is one noray exports.
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EVERY_FRONT_ON, port, startApp } from './helpers/app.js';

interface Dashboard {
  readonly __inputs: ReadonlyArray<{ name: string; type: string; pluginId: string }>;
  readonly panels: ReadonlyArray<{ id: number; title: string; targets: ReadonlyArray<{ expr: string; datasource: { uid: string } }> }>;
}

const DASHBOARD = JSON.parse(readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as Dashboard;
const DEPLOY = readFileSync(new URL('../docs/deploy.md', import.meta.url), 'utf8');

describe('Grafana dashboard', () => {
  it('asks for a Prometheus data source on import and has unique panels that use it', () => {
    expect(DASHBOARD.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(new Set(DASHBOARD.panels.map((panel) => panel.id)).size).toBe(DASHBOARD.panels.length);
    for (const panel of DASHBOARD.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) expect(target.datasource.uid).toBe('${DS_PROMETHEUS}');
    }
    expect(DEPLOY).toContain('grafana-dashboard.json');
  });

  it('queries only series that a server with every front on exports', async () => {
    const app = await startApp(EVERY_FRONT_ON);
    const text = await (await fetch(`http://127.0.0.1:${port(app, 'ops', 'http')}/metrics`)).text();
    // Process metrics are off in tests; the bin turns on prom-client's defaults.
    const defaults = new Registry();
    collectDefaultMetrics({ register: defaults });
    const exported = new Set([...`${text}\n${await defaults.metrics()}`.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]));
    const used = new Set(DASHBOARD.panels.flatMap((panel) => panel.targets.flatMap((target) => [...target.expr.matchAll(/\b(?:noray|process|nodejs)_[a-z0-9_]+/g)].map((match) => match[0]))));
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      expect(exported.has(name) || exported.has(base), name).toBe(true);
    }
  });
});
