import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The committed spec against Spectral's OpenAPI rules and the OWASP API Security Top 10 ruleset,
// as .spectral.yaml sets them up (both rulesets come from node_modules: nothing is fetched).
// 0 errors; warnings are printed, not failed (mostly strings with a length but no pattern).

const root = fileURLToPath(new URL('..', import.meta.url));

interface Finding {
  code: string;
  severity: number;
  message: string;
  path: string[];
}

describe('spec lint (Spectral, OWASP ruleset)', () => {
  it('finds 0 errors in openapi/openapi.json', async () => {
    const { stdout } = await promisify(execFile)(
      `${root}node_modules/.bin/spectral`,
      ['lint', 'openapi/openapi.json', '--ruleset', '.spectral.yaml', '--format', 'json', '--quiet'],
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      // Exit code 1 with findings is an answer; no JSON at all is a broken run.
      if (!error.stdout) throw new Error(`spectral did not run: ${error.stderr}`);
      return { stdout: error.stdout };
    });
    const findings = JSON.parse(stdout) as Finding[];
    const errors = findings.filter((f) => f.severity === 0);
    const warnings = findings.filter((f) => f.severity === 1);
    const counts = new Map<string, number>();
    for (const f of warnings) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
    const byRule = [...counts].map(([code, n]) => `${code}: ${n}`);
    console.log(`spectral: ${errors.length} errors, ${warnings.length} warnings (${byRule.join(', ')})`);
    expect(errors.map((f) => `${f.code} at ${f.path.join('.')}: ${f.message}`)).toEqual([]);
  });

  it('checks the rules it claims to: a spec with an unbounded string fails', async () => {
    // The same ruleset on a spec known to break an OWASP rule, so a ruleset that loads nothing
    // (a wrong name, a missing package) cannot pass silently.
    const bad = JSON.stringify({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      paths: {},
      components: { schemas: { S: { type: 'string' } } },
    });
    const file = `${await mkdtemp(`${tmpdir()}/spectral-`)}/bad.json`;
    await writeFile(file, bad);
    const { stdout } = await promisify(execFile)(
      `${root}node_modules/.bin/spectral`,
      ['lint', file, '--ruleset', `${root}.spectral.yaml`, '--format', 'json', '--quiet'],
      { cwd: root },
    ).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    const codes = (JSON.parse(stdout) as Finding[]).map((f) => f.code);
    expect(codes).toContain('owasp:api4:2023-string-limit');
  });
});
