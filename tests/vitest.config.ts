import { defineConfig } from 'vitest/config';
import CountReporter from './helpers/count-reporter.js';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['tests/**/*.test.ts'],
    // Run on its own by tests/fuzz.vitest.config.ts, after everything else (see there).
    exclude: ['tests/fuzz.test.ts', '**/node_modules/**'],
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files share one database server, each with its own database; none depends on another.
    fileParallelism: true,
    reporters: ['default', new CountReporter('tests')],
  },
});
