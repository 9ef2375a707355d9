// npm run token -- --sub alice [--admin] [--hours 24]: mints a development JWT signed with
// JWT_SECRET (or the documented development secret), for the README's curl walk-through.
import { parseArgs } from 'node:util';
import { sign } from 'hono/jwt';
import { envOrExit } from '../src/env.js';

const usage = 'usage: npm run -s token -- --sub <userId> [--admin] [--hours <n>]\n';

let values: { sub?: string; admin?: boolean; hours?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: 'string', short: 's' },
      admin: { type: 'boolean', default: false },
      hours: { type: 'string', default: '24' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const hours = Number(values.hours);
if (!values.sub || !(hours > 0)) {
  process.stderr.write(`${values.sub ? '--hours must be a positive number' : '--sub is required'}\n${usage}`);
  process.exit(2);
}
const exp = Math.floor(Date.now() / 1000) + Math.round(hours * 3600);
const claims = { sub: values.sub, exp, ...(values.admin ? { role: 'admin' } : {}) };
process.stdout.write(`${await sign(claims, envOrExit().JWT_SECRET, 'HS256')}\n`);
