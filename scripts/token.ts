// npm run token -- <userId> [admin] [hours]: mints a development JWT signed with JWT_SECRET
// (or the documented development secret), for the README's curl walk-through.
import { sign } from 'hono/jwt';
import { envOrExit } from '../src/env.js';

const [sub = 'user-1', role = 'user', hours = '24'] = process.argv.slice(2);
const exp = Math.floor(Date.now() / 1000) + Number(hours) * 3600;
process.stdout.write(`${await sign({ sub, role, exp }, envOrExit().JWT_SECRET, 'HS256')}\n`);
