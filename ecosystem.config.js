// PM2 apps: the API and the Agenda worker as separate processes.
//   pm2 start ecosystem.config.js      # both
//   pm2 restart cron-jobs-worker       # the worker(s) alone
//   pm2 logs cron-jobs-worker
// Both need MONGODB_URI (the same database) and, in production, JWT_SECRET in the environment
// pm2 is started from. PM2 loads this file with require(); Node >= 20.19 can require an ES
// module, and PM2 reads its named export `apps`.
//
// Workers: CRON_WORKERS (default 1) instances of cron-jobs-worker. Each serves its own /metrics
// and /healthz on WORKER_METRICS_PORT (default 9464) plus its instance number (PM2's
// increment_var): 9464, 9465, ... Set WORKER_METRICS_HOST to listen beyond loopback.
//
// Two interpreters run the same TypeScript entries:
//   Node (default): `node --import tsx src/server.ts`, tsx compiling the TypeScript on load. PM2
//   is given node as the program to run (interpreter 'none'): its own Node wrapper would try to
//   load ts-node for a .ts script on a Node without built-in type stripping (< 22.18) and write
//   "TypeScript support unavailable: install ts-node" to the error log, though tsx loads it.
//   Bun (the design doc's deployment): `bun src/server.ts` runs TypeScript itself; the binary is
//   the `bun` npm package's (node_modules/.bin/bun, installed by `npm ci`). Choose it with
//     CRON_RUNTIME=bun npx pm2 start ecosystem.config.js
//   tests/runtimes.test.ts runs the service under that Bun, Node 22 and Node 24 in CI.

const bun = process.env.CRON_RUNTIME === 'bun';

/** How PM2 starts one TypeScript entry under the chosen runtime. */
const run = (entry) =>
  bun
    ? { script: entry, interpreter: `${import.meta.dirname}/node_modules/.bin/bun` }
    : { script: process.execPath, interpreter: 'none', args: ['--import', 'tsx', entry] };

const common = {
  cwd: import.meta.dirname,
  exec_mode: 'fork',
  // Online only once the process says so (process.send('ready'): the API listens, the worker has
  // started Agenda), so `pm2 start` and `pm2 restart` return when the app really serves.
  wait_ready: true,
  // Connecting, indexes and the first repair can take a while against a remote database.
  listen_timeout: 60_000,
  // Above SHUTDOWN_TIMEOUT_MS (20 s by default): on stop/restart PM2 sends SIGINT, the process
  // stops taking work and lets running jobs finish; only after kill_timeout does PM2 SIGKILL.
  kill_timeout: 30_000,
  // A crash loop backs off instead of hammering the database.
  exp_backoff_restart_delay: 200,
};

export const apps = [
  { name: 'cron-jobs-api', ...run('src/server.ts'), ...common, env: { NODE_ENV: 'production' } },
  {
    name: 'cron-jobs-worker',
    ...run('src/jobs/scheduler.ts'),
    ...common,
    instances: Number(process.env.CRON_WORKERS ?? 1),
    increment_var: 'WORKER_METRICS_PORT',
    env: { NODE_ENV: 'production', WORKER_METRICS_PORT: process.env.WORKER_METRICS_PORT ?? '9464' },
  },
];
