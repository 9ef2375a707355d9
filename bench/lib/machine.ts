import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch, cpus, release, totalmem, type } from 'node:os';
import { join } from 'node:path';

/** Where and with what the figures were measured: the header of every report. */
export interface Machine {
  cpu: string;
  cpus: number;
  memoryGb: number;
  os: string;
  node: string;
  /** Installed version of each package the figures depend on (read from node_modules). */
  versions: Record<string, string>;
  ferretdb: string;
  /** Short commit hash; `dirty` when the tree had uncommitted changes, so the commit alone does not say what ran. */
  commit: string;
  dirty: boolean;
  /** ISO time the run started. */
  date: string;
}

const PACKAGES = [
  'agenda',
  '@agendajs/mongo-backend',
  'mongodb',
  'mongoose',
  'hono',
  '@hono/zod-openapi',
  'zod',
  'autocannon',
];

/** Describes this machine and the checkout at `root` (the repository root). */
export function describeMachine(root: string): Machine {
  const cores = cpus();
  return {
    cpu: cores[0]?.model.trim() ?? 'unknown',
    cpus: cores.length,
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()} ${arch()}`,
    node: process.version,
    versions: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(root, name)])),
    ferretdb: ferretDbVersion(root),
    commit: git(root, ['rev-parse', '--short', 'HEAD']) || 'unknown',
    dirty: git(root, ['status', '--porcelain']) !== '',
    date: new Date().toISOString(),
  };
}

function packageVersion(root: string, name: string): string {
  try {
    // Read the file, not require.resolve: some of these packages export no ./package.json.
    return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'not installed';
  }
}

/** The FerretDB the local database is built from (scripts/ferretdb pins it in go.mod). */
function ferretDbVersion(root: string): string {
  const goMod = readFileSync(join(root, 'scripts/ferretdb/go.mod'), 'utf8');
  return /github\.com\/FerretDB\/FerretDB v(\S+)/.exec(goMod)?.[1] ?? 'unknown';
}

function git(root: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}
