// npm run token -- <userId> [admin] [hours] [email]: mints a development JWT signed with JWT_SECRET
// (or the documented development secret), for the README's curl walk-through. The `email` claim
// (default <userId>@example.com) is the address sendEmail jobs of this user may always write to.
import { sign } from 'hono/jwt';
import { envOrExit } from '../src/env.js';

const [sub = 'user-1', role = 'user', hours = '24', email = `${sub}@example.com`] = process.argv.slice(2);
const exp = Math.floor(Date.now() / 1000) + Number(hours) * 3600;
process.stdout.write(`${await sign({ sub, role, exp, email }, envOrExit().JWT_SECRET, 'HS256')}\n`);
