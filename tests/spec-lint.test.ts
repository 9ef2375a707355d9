import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The committed spec (which `generate --check` keeps equal to the routes) against Redocly
// CLI's recommended rules: 0 errors. Warnings are printed, not failed: the two health probes
// have no 4xx to document and the service has no licence to name.

const root = fileURLToPath(new URL('..', import.meta.url));

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

describe('spec lint (Redocly CLI, recommended rules)', () => {
  it('finds 0 errors in openapi/openapi.json', async () => {
    const { stdout } = await promisify(execFile)(
      `${root}node_modules/.bin/redocly`,
      ['lint', 'openapi/openapi.json', '--format=json'],
      {
        cwd: root,
        // No usage data sent and no update check: CI reaches only package registries.
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
    ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
    const report = JSON.parse(stdout) as LintReport;
    const lines = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    console.log(
      `redocly lint: ${report.totals.errors} errors, ${report.totals.warnings} warnings\n${lines.join('\n')}`,
    );
    expect(
      report.problems.filter((p) => p.severity === 'error'),
      lines.join('\n'),
    ).toEqual([]);
    expect(report.totals.errors).toBe(0);
  });
});
