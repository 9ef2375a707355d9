// npm run token -- <userId> [admin] [hours] [email]: mints a development JWT signed with JWT_SECRET
// (or the documented development secret), for the README's curl walk-through. The `email` claim
// (default <userId>@example.com) is the address sendEmail jobs of this user may always write to.
import { sign } from 'hono/jwt';
import { envOrExit } from '../src/env.js';

const [sub = 'user-1', role = 'user', hours = '24', email = `${sub}@example.com`] = process.argv.slice(2);
const exp = Math.floor(Date.now() / 1000) + Number(hours) * 3600;
const config = envOrExit();
const secret = config.JWT_SECRET;
if (!secret) {
  process.stderr.write('JWT_SECRET is unset (JWKS_URL turns the development secret off): get a token from your identity provider.\n');
  process.exit(1);
}
process.stdout.write(`${await sign({ sub, role, exp, email, ...(config.JWT_ISSUER ? { iss: config.JWT_ISSUER } : {}), ...(config.JWT_AUDIENCE ? { aud: config.JWT_AUDIENCE } : {}) }, secret, 'HS256')}\n`);
