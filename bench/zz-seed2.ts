import { connectDb } from '../src/db/index.js';
import { seedJobs } from './lib/seed.js';
const conn = await connectDb(process.argv[2]!, { MONGODB_SERVER_SELECTION_TIMEOUT_MS: 5000, MONGODB_SOCKET_TIMEOUT_MS: 60000 });
const sec = (new Date().getUTCSeconds() + 25) % 60;
await seedJobs(conn, Number(process.argv[3]), { cron: () => `${sec} * * * * *`, owners: 20 });
console.log('seeded for second', sec);
await conn.close();
