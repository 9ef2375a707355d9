import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './helpers/harness.js';

const run = promisify(execFile);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules/.bin', name);

let h: Harness;
let dir: string;
let lintDir: string;
beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(join(tmpdir(), 'cron-client-consumer-'));
  lintDir = await mkdtemp(join(tmpdir(), 'cron-client-lint-'));
});
afterAll(async () => {
  await h.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(lintDir, { recursive: true, force: true });
});

// What a mobile developer writes: it must compile against the installed package alone, with
// DOM types and no Node types (as in React Native), and its calls must succeed.
const sample = `import { createCronClient, ok, isProblem, CronApiError, type CronJob, type CronJobInput, type Problem, type ProblemCode, type JobTypeInfo } from '@cron-jobs/client';

declare const process: { env: Record<string, string> };
const api = createCronClient({ baseUrl: process.env.BASE_URL, getToken: async () => process.env.TOKEN });

const body: CronJobInput = { name: 'Weekly report', type: 'generateReport', cron: '0 6 * * 1', timezone: 'Europe/Berlin', payload: { type: 'runs', period: 'week' } };
// @ts-expect-error: a payload that does not fit its type is a compile error
const wrong: CronJobInput = { name: 'x', type: 'generateReport', cron: '0 6 * * 1', payload: { type: 'runs', period: 'fortnight' } };
void wrong;

const created = await api.POST('/api/cron/jobs', { body });
if (!created.data) throw new Error('create failed: ' + JSON.stringify(created.error));
const job: CronJob = created.data;
for (let i = 0; i < 4; i++) await ok(api.POST('/api/cron/jobs', { body: { ...body, name: 'Report ' + i } }));

const duplicate = await api.POST('/api/cron/jobs', { body });
const problem: Problem | undefined = duplicate.error;
// Typed errors: the codes are a closed list, so a misspelt one does not compile, and a match narrows.
// @ts-expect-error: not one of the service's problem codes
isProblem(duplicate.error, 'no-such-code');
const conflictType: '/problems/conflict' | undefined = isProblem(duplicate.error, 'conflict') ? duplicate.error.type : undefined;
const code: ProblemCode = 'job-limit-reached';
void code;

const names: string[] = [];
// paginate takes what GET takes.
for await (const j of api.paginate('/api/cron/jobs', { params: { query: { limit: 2 } } })) names.push(j.name);
// @ts-expect-error: the old shape, query at the top level, is refused
api.paginate('/api/cron/jobs', { query: { limit: 2 } });

// The catalog's example is typed per job type (told apart by name): it prefills a typed payload.
const { items: types } = await ok(api.GET('/api/cron/job-types'));
const report = types.find((t): t is Extract<JobTypeInfo, { name: 'generateReport' }> => t.name === 'generateReport')!;
const fromCatalog: CronJobInput = { name: 'From the catalog', type: 'generateReport', cron: '0 6 * * 1', payload: report.example };
await ok(api.POST('/api/cron/jobs', { body: fromCatalog }));
await ok(api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: (await ok(api.GET('/api/cron/jobs', { params: { query: { limit: 100 } } }))).items.find((j) => j.name === 'From the catalog')!.id } } }));

const paused = await ok(api.PATCH('/api/cron/jobs/{id}', { params: { path: { id: job.id } }, body: { enabled: false } }));
let missing: number | undefined;
try {
  await ok(api.GET('/api/cron/jobs/{id}', { params: { path: { id: '0123456789abcdef01234567' } } }));
} catch (error) {
  if (error instanceof CronApiError && error.is('not-found')) missing = error.problem.status;
}
console.log(JSON.stringify({ id: job.id, names, paused: paused.enabled, duplicate: problem?.status, duplicateType: problem?.type, conflictType, missing }));
`;

describe('the client package', () => {
  it('has engines, license and repository, openapi-fetch as a peer range, and passes publint and attw', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'generated/package.json'), 'utf8'));
    expect(pkg.engines).toEqual({ node: expect.stringMatching(/^>=\d+/) });
    expect(pkg.license).toBeTruthy();
    expect(pkg.repository).toMatchObject({ type: 'git', url: expect.any(String), directory: 'generated' });
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.peerDependencies).toEqual({ 'openapi-fetch': expect.stringMatching(/^\^\d/) });
    await run('npm', ['pack', '--silent', '--pack-destination', lintDir, './generated'], { timeout: 60_000 });
    const [tarball] = (await readdir(lintDir)).filter((f) => f.endsWith('.tgz'));
    // publint: the package.json fields point at files that exist, in the formats they claim.
    const publint = await run(bin('publint'), ['run', '--strict', join(root, 'generated')], { cwd: root }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    console.log(`publint: ${publint.stdout.trim()}`);
    expect(publint.stdout).toMatch(/All good!/);
    // Are the types wrong: the types resolve under Node's ESM resolution and in bundlers. The package is
    // ESM only (React Native and browsers load it through a bundler), so require() is out of scope
    // (--profile esm-only); attw exits non-zero on any other problem.
    const attw = await run(bin('attw'), [join(lintDir, tarball!), '--profile', 'esm-only', '--no-color'], {
      cwd: root,
    }).catch((e: { stdout: string; code: number }) => ({ ...e, failed: true }));
    console.log(`attw:\n${attw.stdout}`);
    expect('failed' in attw, attw.stdout).toBe(false);
    expect(attw.stdout).toMatch(/node16 \(from ESM\)\s+│\s+🟢/);
  }, 120_000);

  it('packs, installs into a clean project, compiles there and its sample calls succeed', async () => {
    await run('npm', ['pack', '--silent', '--pack-destination', dir, './generated'], { timeout: 60_000 });
    const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^cron-jobs-client-\d+\.\d+\.\d+\.tgz$/);

    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'mobile-sample', private: true, type: 'module' }),
    );
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'DOM', 'DOM.AsyncIterable'],
          types: [],
          strict: true,
          noEmit: false,
          outDir: 'out',
        },
        files: ['sample.ts'],
      }),
    );
    await writeFile(join(dir, 'sample.ts'), sample);
    // Its one dependency (openapi-fetch) comes from the npm cache the project's own install filled.
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', `./${tarball}`], {
      cwd: dir,
      timeout: 120_000,
    });
    // One copy of each file: dist/ and the README, no second schema.d.ts beside dist/'s.
    const installed = join(dir, 'node_modules/@cron-jobs/client');
    expect((await readdir(installed)).sort()).toEqual(['README.md', 'dist', 'package.json']);
    expect((await readdir(join(installed, 'dist'))).sort()).toEqual(['client.d.ts', 'client.js', 'schema.d.ts']);
    // openapi-fetch is a peer: npm installed it beside the package, one copy for the app and the client.
    expect((await readdir(join(dir, 'node_modules'))).sort()).toContain('openapi-fetch');

    const compiled = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).catch((e: { stdout: string }) => e);
    expect(compiled.stdout).toBe('');

    const { stdout } = await run(process.execPath, [join(dir, 'out/sample.js')], {
      cwd: dir,
      env: { ...process.env, BASE_URL: h.baseUrl, TOKEN: await h.token('mobile-dev') },
      timeout: 30_000,
    });
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({
      paused: false,
      duplicate: 409,
      duplicateType: '/problems/conflict',
      conflictType: '/problems/conflict',
      missing: 404,
    });
    expect(result.id).toMatch(/^[0-9a-f]{24}$/);
    // Five jobs over pages of two: the iterator followed nextCursor to the end.
    expect(result.names.sort()).toEqual(['Report 0', 'Report 1', 'Report 2', 'Report 3', 'Weekly report']);
  }, 180_000);
});
