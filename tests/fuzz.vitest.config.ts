import { defineConfig } from 'vitest/config';
import CountReporter from './helpers/count-reporter.js';
import base from './vitest.config.js';

// The Schemathesis run alone, after the rest of `npm test`: it keeps both cores busy for about
// a minute, which the timing-sensitive fault tests must not share.
export default defineConfig({
  test: {
    ...base.test,
    include: ['tests/fuzz.test.ts'],
    exclude: ['**/node_modules/**'],
    reporters: ['default', new CountReporter('fuzz')],
  },
});
