import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const spec = 'openapi/openapi.json';
/** The published major version; the copies below keep it, bump the minor part, or bump it. */
const major = Number(JSON.parse(readFileSync(spec, 'utf8')).info.version.split('.')[0]);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'breaking-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs the CI check (oasdiff underneath) and returns its exit code and output. */
async function check(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('npx', ['tsx', 'scripts/check-breaking.ts', ...args], {
      timeout: 600_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

/** A copy of the real spec that removes an operation and requires a new query parameter. */
async function brokenCopy(version: string): Promise<string> {
  const doc = JSON.parse(await readFile(spec, 'utf8'));
  delete doc.paths['/api/cron/jobs/{id}/run-now'];
  doc.paths['/api/cron/jobs'].get.parameters.push({
    name: 'tenant',
    in: 'query',
    required: true,
    schema: { type: 'string' },
  });
  doc.info.version = version;
  const file = join(dir, `broken-${version}.json`);
  await writeFile(file, JSON.stringify(doc));
  return file;
}

describe('the breaking-change check', () => {
  // The first run may build oasdiff from Go modules (half a minute to a few minutes).
  it('passes on the real spec against its version on the previous commit', async () => {
    const { code, output } = await check();
    expect(output).toMatch(/no unannounced breaking change|skipped: no base spec/);
    expect(code).toBe(0);
  }, 600_000);

  it('passes on the real spec against itself', async () => {
    const { code, output } = await check('--base', spec, '--revision', spec);
    expect(code).toBe(0);
    expect(output).toContain('No changes detected');
  }, 60_000);

  it('fails on a deliberately broken copy that keeps the version, naming the breaks', async () => {
    const { code, output } = await check('--base', spec, '--revision', await brokenCopy(`${major}.0.0`));
    expect(code).toBe(1);
    expect(output).toContain('api-path-removed-without-deprecation');
    expect(output).toContain('new-required-request-parameter');
    expect(output).toContain(`major part was not bumped (${major}.0.0 -> ${major}.0.0)`);
  }, 60_000);

  it('fails when only the minor part was bumped', async () => {
    const { code } = await check('--base', spec, '--revision', await brokenCopy(`${major}.1.0`));
    expect(code).toBe(1);
  }, 60_000);

  it('passes the same breaks when the major part was bumped', async () => {
    const { code, output } = await check('--base', spec, '--revision', await brokenCopy(`${major + 1}.0.0`));
    expect(output).toContain('api-path-removed-without-deprecation');
    expect(code).toBe(0);
  }, 60_000);
});
