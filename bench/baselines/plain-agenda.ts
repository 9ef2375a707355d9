// The fire-lag baseline: plain Agenda 6.2.6 with @agendajs/mongo-backend and no service around
// it, firing N recurring jobs of one name. As a module it seeds those jobs and starts the
// baseline process; as a script (`node --import tsx bench/baselines/plain-agenda.ts <uri>
// <processEveryMs> <smtpUrl>`) it is that process: it prints one BASELINE-FIRE line per fire,
// with the slot the fire was due for and when it started, then sends the job's email.
import { MongoBackend } from '@agendajs/mongo-backend';
import { Agenda, type Job } from 'agenda';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import nodemailer from 'nodemailer';
import { slotAt } from '../../src/scheduler/cron.js';
import { isMain } from '../lib/main.js';
import { type ServiceProcess, spawnService } from '../lib/worker-process.js';

export const BASELINE_JOB = 'bench-fire';
const COLLECTION = 'agendaJobs';
const READY = 'baseline started';
export const FIRE_LINE = 'BASELINE-FIRE ';

/** Our fire job's concurrency (src/scheduler/index.ts), so both run as many fires at once. */
const CONCURRENCY = 20;

interface FireData {
  i: number;
  to: string;
}

/** What the baseline prints per fire: the job, the slot it was due for and its start, epoch ms. */
export interface BaselineFire {
  i: number;
  slot: number;
  startedAt: number;
}

/**
 * Stores `n` recurring jobs as `agenda.every(cron, name, data, { timezone, skipImmediate: true })`
 * saves them. every() itself cannot make them: it upserts on { name, type: 'single' }, so every
 * call after the first replaces the one job of that name (and one call per job would take
 * longer than the measurement on FerretDB). So the first job is saved by every() for real and
 * the others are inserted in bulk as copies of what it stored, each with its own cron, data and
 * next run computed as Agenda does (the cron's first slot after now).
 */
export async function seedBaseline(db: Db, n: number, cron: (i: number) => string, timezone = 'UTC'): Promise<void> {
  const agenda = new Agenda({ backend: new MongoBackend({ mongo: db, collection: COLLECTION }), name: 'bench-seed' });
  await agenda.ready;
  const first = await agenda.every(cron(0), BASELINE_JOB, dataOf(0), { timezone, skipImmediate: true });
  const template = await db.collection(COLLECTION).findOne({ _id: new ObjectId(String(first.attrs._id)) });
  if (!template) throw new Error('agenda.every() stored no job');
  for (let start = 1; start < n; start += 1000) {
    const docs = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const job = agenda
        .create<FireData>(BASELINE_JOB, dataOf(i))
        .repeatEvery(cron(i), { timezone, skipImmediate: true });
      docs.push({
        ...template,
        _id: new ObjectId(),
        data: dataOf(i),
        repeatInterval: cron(i),
        nextRunAt: job.attrs.nextRunAt,
      });
    }
    await db.collection(COLLECTION).insertMany(docs);
  }
}

const dataOf = (i: number): FireData => ({ i, to: `user${i}@example.com` });

/** Starts the baseline as its own process and waits until its Agenda has started. */
export function startBaseline(uri: string, processEveryMs: number, smtpUrl: string): Promise<ServiceProcess> {
  return spawnService({
    name: 'plain agenda',
    entry: 'bench/baselines/plain-agenda.ts',
    args: [uri, String(processEveryMs), smtpUrl],
    env: {},
    readyText: READY,
    timeoutMs: 60_000,
  });
}

/**
 * The processor. When it runs, Agenda has already moved `nextRunAt` to the following slot and
 * set `lastRunAt` to the start (Job.run() calls computeNextRunAt() before the processor); no
 * attribute holds the slot that was due, so it is the cron's latest slot at or before the start,
 * exact while a fire is less than one period late (the suite's deadlines are shorter).
 */
async function fire(job: Job<FireData>, send: (to: string, subject: string) => Promise<unknown>) {
  const startedAt = job.attrs.lastRunAt!;
  const slot = slotAt(String(job.attrs.repeatInterval), job.attrs.repeatTimezone ?? 'UTC', startedAt);
  const record: BaselineFire = { i: job.attrs.data.i, slot: slot.getTime(), startedAt: startedAt.getTime() };
  process.stdout.write(`${FIRE_LINE}${JSON.stringify(record)}\n`);
  // The same trivial work as our sendEmail run: one message through the local SMTP server.
  await send(job.attrs.data.to, `Digest ${job.attrs.data.i}`);
}

async function main([uri, processEvery, smtpUrl]: string[]) {
  if (!uri || !processEvery || !smtpUrl)
    throw new Error('usage: plain-agenda.ts <mongodb uri> <processEveryMs> <smtpUrl>');
  const client = await MongoClient.connect(uri);
  const agenda = new Agenda({
    backend: new MongoBackend({ mongo: client.db(), collection: COLLECTION }),
    name: 'baseline',
    processEvery: Number(processEvery),
  });
  // In pino's shape, so the bench counts them as it counts our worker's.
  agenda.on('error', (error: Error) =>
    process.stderr.write(`${JSON.stringify({ level: 50, msg: 'agenda error', err: { message: error.message } })}\n`),
  );
  const send = async (to: string, subject: string) => {
    const transport = nodemailer.createTransport({ url: smtpUrl });
    try {
      return await transport.sendMail({
        from: 'bench@localhost',
        to,
        subject,
        text: 'You have new items since your last digest.',
      });
    } finally {
      transport.close();
    }
  };
  agenda.define<FireData>(BASELINE_JOB, (job) => fire(job, send), { concurrency: CONCURRENCY });
  await agenda.start();
  process.stdout.write(`${READY}\n`);
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
