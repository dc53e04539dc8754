import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { App, configWith } from '../src/index.js';
import { ALL_OFF } from './helpers/app.js';

describe('package entry', () => {
  it('builds and runs an App from a config, as an embedding program would', async () => {
    const app = new App({
      config: configWith({ ...ALL_OFF, socketPort: 0, httpPort: 0 }),
      logger: pino({ level: 'silent' }),
      processMetrics: false,
    });
    await app.start();
    try {
      const health = await fetch(`http://127.0.0.1:${app.ports().ops?.http}/health`);
      expect(((await health.json()) as { fronts: Record<string, unknown> }).fronts).toHaveProperty('noray');
    } finally {
      await app.stop();
    }
  });
});
