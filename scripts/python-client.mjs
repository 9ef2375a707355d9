// npm run python-client -- [--base-url URL --token JWT]
// What a partner does with the spec in Python: generates a client with openapi-python-client,
// type-checks it and a sample that uses it with mypy --strict, and, given a running service, runs
// the sample (create, list, delete, and 429 / 503 answers handled as typed values).
// Both tools are pinned and installed from PyPI into .local/venv (beside Schemathesis) on first use.
// Plain Node, like ensure-schemathesis.mjs. Prints what it did; exits non-zero on any failure.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const PYTHON_TOOLS = { 'openapi-python-client': '0.29.1', mypy: '1.19.1' };

const root = resolve(fileURLToPath(import.meta.url), '../..');
const venv = join(root, '.local', 'venv');
const bin = (name) => join(venv, 'bin', name);
export const outDir = join(root, '.local', 'python-client');
const sample = join(root, 'tests', 'fixtures', 'python_client_sample.py');

function installed(name) {
  try {
    const out = execFileSync(bin('pip'), ['show', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /^Version: (\S+)$/m.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

export function ensurePythonTools() {
  const missing = Object.entries(PYTHON_TOOLS).filter(([name, version]) => installed(name) !== version);
  if (!missing.length) return;
  process.stderr.write(`installing ${missing.map(([n, v]) => `${n}==${v}`).join(' ')} into .local/venv...\n`);
  if (!existsSync(bin('pip'))) execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(
    bin('pip'),
    ['install', '--quiet', '--disable-pip-version-check', ...missing.map(([n, v]) => `${n}==${v}`)],
    { stdio: 'inherit' },
  );
}

/** Generates the client from the committed spec into .local/python-client/cron_jobs_client. */
export function generate() {
  rmSync(outDir, { recursive: true, force: true });
  const config = join(root, '.local', 'python-client.yaml');
  // No formatter hook: ruff is not part of the pinned tools.
  writeFileSync(config, 'post_hooks: []\n');
  execFileSync(
    bin('openapi-python-client'),
    [
      'generate',
      '--path',
      join(root, 'openapi/openapi.json'),
      '--meta',
      'none',
      '--config',
      config,
      '--output-path',
      join(outDir, 'cron_jobs_client'),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
}

/** mypy --strict over the generated package and the sample that uses it. */
export function typeCheck() {
  return execFileSync(bin('mypy'), ['--strict', '--no-incremental', 'cron_jobs_client', sample], {
    cwd: outDir,
    encoding: 'utf8',
  });
}

/**
 * Runs the sample against a service and resolves with its JSON line. Asynchronous: a test that
 * serves the API from its own process must keep answering meanwhile.
 */
export function runSample(baseUrl, token, extra = {}) {
  return new Promise((resolvePromise, reject) =>
    execFile(
      bin('python'),
      [sample],
      {
        cwd: outDir,
        encoding: 'utf8',
        env: { ...process.env, PYTHONPATH: outDir, BASE_URL: baseUrl, TOKEN: token, ...extra },
        timeout: 60_000,
      },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolvePromise(stdout)),
    ),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { 'base-url': { type: 'string' }, token: { type: 'string' } } });
  ensurePythonTools();
  generate();
  process.stdout.write(`generated ${outDir}/cron_jobs_client\n${typeCheck()}`);
  if (values['base-url'] && values.token) process.stdout.write(await runSample(values['base-url'], values.token));
}
