// npm run check:breaking [-- --base <file|git-ref:path>] [--revision <file>]
// Fails when the API contract breaks clients without saying so: compares openapi/openapi.json
// with its version on the previous commit using oasdiff, and exits 1 on a breaking change
// unless info.version's major part went up (oasdiff's MISSING-VERSION-BUMP policy).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Pinned: a new oasdiff can classify changes differently, which should be a deliberate upgrade. */
const OASDIFF = 'github.com/oasdiff/oasdiff@v1.38.0';
const binDir = join(root, '.local/bin');
const binary = join(binDir, 'oasdiff');

/** Builds oasdiff from Go modules into .local/bin once (about half a minute), like FerretDB. */
async function ensureOasdiff(): Promise<string> {
  const stamp = `${binary}.version`;
  if (existsSync(binary) && existsSync(stamp) && readFileSync(stamp, 'utf8') === OASDIFF) return binary;
  process.stderr.write(`building ${OASDIFF} with go into .local/bin (first run only)...\n`);
  // Built in a folder of its own and moved into place, so two runs at once never see half a file.
  const gobin = await mkdtemp(join(tmpdir(), 'oasdiff-build-'));
  try {
    await promisify(execFile)('go', ['install', OASDIFF], {
      env: { ...process.env, GOBIN: gobin },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    throw new Error(
      `could not build oasdiff (Go >= 1.24 is needed): ${(error as { stderr?: string }).stderr ?? (error as Error).message}`,
    );
  }
  mkdirSync(binDir, { recursive: true });
  renameSync(join(gobin, 'oasdiff'), binary);
  writeFileSync(stamp, OASDIFF);
  return binary;
}

/** The spec at `ref` (e.g. HEAD~1:openapi/openapi.json) as a temporary file, or why there is none. */
async function fromGit(ref: string): Promise<{ file?: string; why?: string }> {
  const shown = spawnSync('git', ['show', ref], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (shown.status !== 0) return { why: shown.stderr.trim().split('\n')[0] };
  const file = join(await mkdtemp(join(tmpdir(), 'oasdiff-base-')), 'openapi.json');
  writeFileSync(file, shown.stdout);
  return { file };
}

const { values } = parseArgs({
  options: {
    base: { type: 'string', default: 'HEAD~1:openapi/openapi.json' },
    revision: { type: 'string', default: join(root, 'openapi/openapi.json') },
  },
});
const base = existsSync(values.base!) ? { file: values.base! } : await fromGit(values.base!);
if (!base.file) {
  // A first commit, or a shallow clone without history: nothing to be compatible with.
  process.stdout.write(`breaking-change check skipped: no base spec at ${values.base} (${base.why})\n`);
  process.exit(0);
}
const oasdiff = await ensureOasdiff();
const result = spawnSync(
  oasdiff,
  [
    'breaking',
    base.file,
    values.revision!,
    '--fail-on',
    'MISSING-VERSION-BUMP',
    '--format',
    'text',
    '--color',
    'never',
  ],
  {
    encoding: 'utf8',
  },
);
const version = (file: string) =>
  (JSON.parse(readFileSync(file, 'utf8')) as { info: { version: string } }).info.version;
const report = `${result.stdout}${result.stderr}`.trim();
if (result.status === 0) {
  process.stdout.write(
    `no unannounced breaking change (${version(base.file)} -> ${version(values.revision!)})${report && report !== 'No changes detected' ? `:\n${report}` : ''}\n`,
  );
} else {
  process.stderr.write(
    `The API contract has breaking changes but info.version's major part was not bumped (${version(base.file)} -> ${version(values.revision!)}).\n` +
      `${report}\nKeep the change compatible, or bump the major version in src/app.ts (openApiInfo) and run npm run generate.\n`,
  );
  process.exit(1);
}
