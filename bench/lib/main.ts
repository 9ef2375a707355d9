import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Suite } from './report.js';

/** True when the module at `url` is the script node was started with. */
export const isMain = (url: string) => process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(url);

/**
 * Runs one suite as a script: `tsx bench/<suite>.ts [--quick] [--out file.json]`. Progress goes
 * to stderr; the result is written to `--out` (bench/run.ts uses that) or printed as JSON.
 */
export async function suiteMain(run: Suite): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const outAt = args.indexOf('--out');
  const out = outAt >= 0 ? args[outAt + 1] : undefined;
  const started = performance.now();
  const log = (message: string) =>
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  const result = await run({ quick, log });
  result.ms ??= Math.round(performance.now() - started);
  const json = JSON.stringify(result, null, 2);
  if (out) writeFileSync(out, json);
  else process.stdout.write(`${json}\n`);
  // Sockets or timers a suite forgot must not keep a finished benchmark alive.
  process.exit(0);
}
