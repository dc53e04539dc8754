import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/fast-check-setup.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Socket tests on a 2-core machine: a few files at a time keeps timing stable.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
