// npm run db: the local database alone, for running `npm run api` and `npm run worker` apart. It listens
// on LOCAL_DB_PORT (27018 by default), so the MONGODB_URI it prints stays the same from one start to the next.
import { createServer } from 'node:net';
import { startLocalDb } from '../src/db/index.js';
import { envOrExit } from '../src/env.js';
import { createLogger } from '../src/lib/logger.js';

const config = envOrExit();
const logger = createLogger(config);

/** The error listening on the port gives, or undefined when it is free. */
function portProblem(port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((ok) => {
    const probe = createServer();
    probe.once('error', (error) => ok(error));
    probe.listen(port, '127.0.0.1', () => probe.close(() => ok(undefined)));
  });
}

const busy = await portProblem(config.LOCAL_DB_PORT);
if (busy) {
  const why = busy.code === 'EADDRINUSE' ? 'is in use (another `npm run db`?)' : `cannot be used (${busy.message})`;
  process.stderr.write(
    `Port ${config.LOCAL_DB_PORT} on 127.0.0.1 ${why}: stop what holds it, or set LOCAL_DB_PORT to a free port.\n`,
  );
  process.exit(1);
}
const db = await startLocalDb(config.LOCAL_DB_DIR, logger, { port: config.LOCAL_DB_PORT, backend: config.LOCAL_DB });
process.stdout.write(`\nexport MONGODB_URI=${db.uri}\n\n`);
const stop = () => void db.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
