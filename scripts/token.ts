// npm run token -- --sub alice [--admin] [--hours 24] [--email a@b.c]: mints a development JWT
// signed with JWT_SECRET (or the documented development secret), for the README's curl
// walk-through. The `email` claim (default <sub>@example.com) is the address sendEmail jobs of
// this user may always write to.
import { parseArgs } from 'node:util';
import { sign } from 'hono/jwt';
import { envOrExit } from '../src/env.js';

const usage = 'usage: npm run -s token -- --sub <userId> [--admin] [--hours <n>] [--email <address>]\n';

let values: { sub?: string; admin?: boolean; hours?: string; email?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: 'string', short: 's' },
      admin: { type: 'boolean', default: false },
      hours: { type: 'string', default: '24' },
      email: { type: 'string' },
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
const config = envOrExit();
if (!config.JWT_SECRET) {
  process.stderr.write(
    'JWT_SECRET is unset (JWKS_URL turns the development secret off): get a token from your identity provider.\n',
  );
  process.exit(1);
}
const exp = Math.floor(Date.now() / 1000) + Math.round(hours * 3600);
const claims = {
  sub: values.sub,
  exp,
  email: values.email ?? `${values.sub}@example.com`,
  ...(values.admin ? { role: 'admin' } : {}),
  ...(config.JWT_ISSUER ? { iss: config.JWT_ISSUER } : {}),
  ...(config.JWT_AUDIENCE ? { aud: config.JWT_AUDIENCE } : {}),
};
process.stdout.write(`${await sign(claims, config.JWT_SECRET, 'HS256')}\n`);
