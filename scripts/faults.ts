/**
 * The fault scenarios of tests/faults, run larger, printing their figures:
 *   npm run faults -- [--workers 3] [--jobs 200] [--minutes 10] [--cron '{i}/10 * * * * *' --spread 10]
 *                      [--outage-seconds 30] [--only several,kill,outage,shutdown]
 * Uses MONGODB_URI when set (a database per scenario), else private FerretDBs under .local/.
 * Writes the figures as JSON to .local/faults-<timestamp>.json as well.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startLocalDb } from '../src/db/index.js';
import { databaseOutage, killedWorker, severalWorkers, shutdownUnderLoad } from '../tests/faults/scenarios.js';
import { uriWithDb } from '../tests/helpers/harness.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '200' },
    minutes: { type: 'string', default: '10' },
    // {i} is each job's index modulo --spread: the jobs are spread over the period.
    cron: { type: 'string', default: '{i}/10 * * * * *' },
    spread: { type: 'string', default: '10' },
    // Agenda's poll period for the workers; the service's default, not the tests' 500 ms.
    'process-every': { type: 'string', default: '5000' },
    'outage-seconds': { type: 'string', default: '30' },
    only: { type: 'string', default: 'several,kill,outage,shutdown' },
  },
});
const only = new Set(values.only.split(','));
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const results: Record<string, unknown> = { startedAt: new Date().toISOString(), options: values };

// A database server for the scenarios that do not stop theirs.
const shared = process.env.MONGODB_URI ? undefined : await startLocalDb(`.local/faults-db-${process.pid}`);
const baseUri = process.env.MONGODB_URI ?? shared!.uri;
const uri = (name: string) => uriWithDb(baseUri, `faults_${name}_${stamp.slice(0, 19).replace(/-/g, '')}`);

const report = (name: string, figures: unknown) => {
  results[name] = figures;
  console.log(`\n## ${name}\n${JSON.stringify(figures, null, 2)}`);
};

try {
  if (only.has('several')) {
    const minutes = Number(values.minutes);
    report(
      'severalWorkers',
      await severalWorkers({
        uri: uri('several'),
        workers: Number(values.workers),
        jobs: Number(values.jobs),
        cron: values.cron,
        spread: Number(values.spread),
        env: { AGENDA_PROCESS_EVERY_MS: values['process-every'] },
        durationMs: minutes * 60_000,
        timeoutMs: minutes * 60_000 + 120_000,
      }),
    );
  }
  if (only.has('kill')) report('killedWorker', await killedWorker({ uri: uri('kill'), lockLifetimeMs: 3000 }));
  if (only.has('outage'))
    report(
      'databaseOutage',
      await databaseOutage({
        dataDir: `.local/faults-outage-${process.pid}`,
        outageMs: Number(values['outage-seconds']) * 1000,
      }),
    );
  if (only.has('shutdown'))
    report('shutdownUnderLoad', await shutdownUnderLoad({ uri: uri('shutdown'), drainMs: 5000, slowJobs: 10 }));
} finally {
  await shared?.stop();
  if (shared) await rm(`.local/faults-db-${process.pid}`, { recursive: true, force: true });
  await mkdir('.local', { recursive: true });
  const file = `.local/faults-${stamp}.json`;
  await writeFile(file, JSON.stringify(results, null, 2));
  console.log(`\nfigures written to ${file}`);
}
