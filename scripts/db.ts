// npm run db: the local FerretDB alone, for running `npm run api` and `npm run worker` apart.

import { startLocalDb } from '../src/db/index.js';
import { envOrExit } from '../src/env.js';
import { createLogger } from '../src/lib/logger.js';

const config = envOrExit();
const logger = createLogger(config);
const db = await startLocalDb(config.LOCAL_DB_DIR, logger);
process.stdout.write(`\nexport MONGODB_URI=${db.uri}\n\n`);
const stop = () => void db.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
