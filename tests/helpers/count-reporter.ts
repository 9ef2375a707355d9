import type { Reporter, TestModule } from 'vitest/node';

/**
 * Ends a vitest run with one plain line, `<label>: N passed, N failed, N skipped`: a summary any
 * CI can read, where vitest's own (coloured, two-column) summary is not recognised.
 */
export default class CountReporter implements Reporter {
  constructor(private readonly label = 'tests') {}

  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') count.failed++;
        else count.skipped++;
      }
      // A file that failed to load has no tests but is a failure all the same.
      if (module.state() === 'failed' && ![...module.children.allTests()].length) count.failed++;
    }
    process.stdout.write(`\n${this.label}: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
