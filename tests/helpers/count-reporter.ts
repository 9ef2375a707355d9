import type { SerializedError } from 'vitest';
import type { Reporter, TestModule, TestSpecification } from 'vitest/node';

/**
 * Ends a vitest run with one plain line, `<label>: N passed, N failed, N skipped`: a summary any
 * CI can read, where vitest's own (coloured, two-column) summary is not recognised.
 *
 * A file counts as one failure of its own when it failed without any of its tests failing: it
 * did not load, a hook threw (its tests then show as skipped), or it crashed. An error vitest
 * could not pin on any test (an unhandled rejection) is a failure too, and so is a file that never
 * ran at all (a global setup that threw: no database, no Go). So the line never reads "0 failed"
 * for a run that vitest itself fails.
 */
export default class CountReporter implements Reporter {
  private planned = 0;

  constructor(private readonly label = 'tests') {}

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>) {
    this.planned = specifications.length;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>) {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const module of modules) {
      let failedTests = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') failedTests++;
        else count.skipped++;
      }
      count.failed += failedTests;
      if (module.state() === 'failed' && failedTests === 0) count.failed++;
    }
    count.failed += unhandledErrors.length + Math.max(0, this.planned - modules.length);
    process.stdout.write(`\n${this.label}: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
