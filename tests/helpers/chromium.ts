import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';

/**
 * The Chromium the browser tests drive, from the project's own install: `CHROMIUM_PATH` when set
 * (any local Chromium or Chrome), else the build the `@sparticuz/chromium` dev dependency ships
 * inside its npm package for Linux x64, unpacked into the temp folder on first use (about 2 s).
 * Nothing is downloaded and nothing is installed by hand.
 */
export async function chromiumExecutable(): Promise<string> {
  const chosen = process.env.CHROMIUM_PATH;
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`CHROMIUM_PATH is ${chosen}, which does not exist`);
    return chosen;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `@sparticuz/chromium ships Chromium for Linux x64 only, not ${process.platform}-${process.arch}: ` +
        'set CHROMIUM_PATH to a local Chromium or Chrome',
    );
  }
  const { default: packaged } = await import('@sparticuz/chromium');
  const executable = await packaged.executablePath();
  // It unpacks to <tmp>/chromium once and then reuses whatever is there, even the build an older
  // version of the package left: a Chromium of another major than the package's is replaced.
  const manifest = new URL('../../node_modules/@sparticuz/chromium/package.json', import.meta.url);
  const major = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version.split('.')[0];
  const { stdout } = await promisify(execFile)(executable, ['--version']);
  if (stdout.startsWith(`Chromium ${major}.`)) return executable;
  await rm(executable, { force: true });
  return packaged.executablePath();
}
