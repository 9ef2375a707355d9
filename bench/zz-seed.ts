import { connectDb } from '../src/db/index.js';
import { seedJobs } from '../bench/lib/seed.js';
const conn = await connectDb(process.argv[2]!, { MONGODB_SERVER_SELECTION_TIMEOUT_MS: 5000, MONGODB_SOCKET_TIMEOUT_MS: 60000 });
const t = Date.now();
await seedJobs(conn, Number(process.argv[3]), { cron: () => '0 0 * * * *', owners: 20 });
console.log('seeded', Date.now() - t);
await conn.close();
