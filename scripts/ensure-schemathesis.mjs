// Installs the pinned Schemathesis from PyPI into .local/venv (a Python venv of the project's
// own), unless that exact version is already there, so `npm test` fuzzes on a fresh clone with
// nothing installed by hand. Needs python3 (with venv and pip) on the machine.
// Plain Node: runs before anything else. Prints the path of the schemathesis executable.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCHEMATHESIS_VERSION = '4.32.5';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const venv = join(root, '.local', 'venv');
export const schemathesisBin = join(venv, 'bin', 'schemathesis');

function installedVersion() {
  if (!existsSync(schemathesisBin)) return undefined;
  try {
    return /version (\S+)/.exec(execFileSync(schemathesisBin, ['--version'], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

export function ensureSchemathesis() {
  if (installedVersion() === SCHEMATHESIS_VERSION) return schemathesisBin;
  process.stderr.write(`installing schemathesis ${SCHEMATHESIS_VERSION} into .local/venv...\n`);
  if (!existsSync(join(venv, 'bin', 'pip'))) execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(
    join(venv, 'bin', 'pip'),
    ['install', '--quiet', '--disable-pip-version-check', `schemathesis==${SCHEMATHESIS_VERSION}`],
    { stdio: 'inherit' },
  );
  const got = installedVersion();
  if (got !== SCHEMATHESIS_VERSION)
    throw new Error(`schemathesis ${SCHEMATHESIS_VERSION} did not install (found ${got ?? 'nothing'})`);
  return schemathesisBin;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${ensureSchemathesis()}\n`);
}
