import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const config = 'tests/fixtures/count-reporter/vitest.config.ts';

/** Runs vitest on the named fixture files with the count reporter; its exit code and count line. */
function runFixtures(...files: string[]): Promise<{ code: number; line: string | undefined }> {
  return runVitest(config, files);
}

function runVitest(configFile: string, files: string[]): Promise<{ code: number; line: string | undefined }> {
  return new Promise((resolve) => {
    execFile('npx', ['vitest', 'run', '--config', configFile, ...files], { timeout: 60_000 }, (error, stdout) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, line: /^fixtures: .*$/m.exec(stdout)?.[0] });
    });
  });
}

describe('the closing count line', () => {
  it('counts passes and skips of a run that passes, which exits 0', async () => {
    expect(await runFixtures('passes')).toEqual({ code: 0, line: 'fixtures: 1 passed, 0 failed, 1 skipped' });
  });

  it('counts a file whose setup threw as failed, although its tests only show as skipped', async () => {
    const { code, line } = await runFixtures('passes', 'hook-throws');
    expect(line).toBe('fixtures: 1 passed, 1 failed, 2 skipped');
    expect(code).not.toBe(0);
  });

  it('counts a file that failed to load as failed, and a failed test once', async () => {
    const { code, line } = await runFixtures('import-throws', 'test-fails');
    expect(line).toBe('fixtures: 0 passed, 2 failed, 0 skipped');
    expect(code).not.toBe(0);
  });

  it('counts the files of a run whose global setup threw as failed, though none of them ran', async () => {
    const { code, line } = await runVitest('tests/fixtures/count-reporter/setup-throws.config.ts', [
      'passes',
      'test-fails',
    ]);
    expect(line).toBe('fixtures: 0 passed, 2 failed, 0 skipped');
    expect(code).not.toBe(0);
  });
});
