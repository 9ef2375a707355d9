// Runs `npm ci` when node_modules was not installed from the current package-lock.json, so
// `npm start` and `npm test` work on a fresh clone with nothing installed by hand.
// Plain Node on purpose: it runs before any dependency exists.
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const stamp = 'node_modules/.installed-from-lock';
const lockHash = createHash('sha256').update(readFileSync('package-lock.json')).digest('hex');

// `npm ci` itself ends here with --stamp-only (postinstall), so a following `npm test` does not
// install everything a second time.
if (process.argv.includes('--stamp-only')) writeFileSync(stamp, lockHash);
else if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== lockHash) {
  process.stdout.write('installing dependencies (npm ci)...\n');
  execSync('npm ci --no-audit --no-fund --loglevel=error', { stdio: 'inherit' });
  writeFileSync(stamp, lockHash);
}
