// PM2 apps: the API and the Agenda worker as two processes.
//   pm2 start ecosystem.config.js      # both
//   pm2 restart cron-jobs-worker       # the worker alone
//   pm2 logs cron-jobs-worker
// Both need MONGODB_URI (the same database) and, in production, JWT_SECRET in the environment
// pm2 is started from. PM2 loads this file with require(); Node >= 20.19 can require an ES
// module, and PM2 reads its named export `apps`.
//
// Two interpreters run the same TypeScript entries:
//   Node (default): `node --import tsx src/server.ts`; tsx compiles the TypeScript on load.
//   Bun (the design doc's deployment): `bun src/server.ts` runs TypeScript itself; the binary is
//   the `bun` npm package's (node_modules/.bin/bun, installed by `npm ci`). Choose it with
//     CRON_RUNTIME=bun npx pm2 start ecosystem.config.js
//   tests/bun.test.ts runs the service under that Bun in CI (create, list, fire, clean stop).

const bun = process.env.CRON_RUNTIME === 'bun';

const common = {
  cwd: import.meta.dirname,
  ...(bun
    ? { interpreter: `${import.meta.dirname}/node_modules/.bin/bun` }
    : { interpreter: 'node', interpreter_args: '--import tsx' }),
  exec_mode: 'fork',
  // Above SHUTDOWN_TIMEOUT_MS (20 s by default): on stop/restart PM2 sends SIGINT, the process
  // stops taking work and lets running jobs finish; only after kill_timeout does PM2 SIGKILL.
  kill_timeout: 30_000,
  // A crash loop backs off instead of hammering the database.
  exp_backoff_restart_delay: 200,
  env: { NODE_ENV: 'production' },
};

export const apps = [
  { name: 'cron-jobs-api', script: 'src/server.ts', ...common },
  { name: 'cron-jobs-worker', script: 'src/jobs/scheduler.ts', ...common },
];
