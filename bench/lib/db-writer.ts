// One writer process of the databases suite: `tsx bench/lib/db-writer.ts URI PREFIX WRITES IN_FLIGHT`.
// Mixed writes as the API and a worker make them (insert a run, update a job by owner and name,
// claim-style findOneAndUpdate by _id), `IN_FLIGHT` at a time; prints one JSON line:
// { ms: wall time, latencies: [ms per write] }.
import { MongoClient, ObjectId } from 'mongodb';

const [uri, prefix, writesArg, inFlightArg] = process.argv.slice(2);
const writes = Number(writesArg);
const inFlight = Number(inFlightArg);
const client = await new MongoClient(uri!).connect();
const db = client.db();
const jobs = db.collection('writer_jobs');
const runs = db.collection('writer_runs');

const ids = Array.from({ length: 50 }, () => new ObjectId());
await jobs.insertMany(ids.map((_id, i) => ({ _id, ownerId: `${prefix}-${i % 5}`, name: `job ${i}`, count: 0 })));

const write = async (i: number) => {
  const k = i % 50;
  switch (i % 3) {
    case 0:
      return runs.insertOne({ jobId: ids[k], ownerId: `${prefix}-${k % 5}`, status: 'queued', at: new Date() });
    case 1:
      return jobs.updateOne({ ownerId: `${prefix}-${k % 5}`, name: `job ${k}` }, { $set: { touchedAt: new Date() } });
    default:
      return jobs.findOneAndUpdate({ _id: ids[k] }, { $inc: { count: 1 } });
  }
};

const latencies: number[] = [];
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < writes) {
      const i = next++;
      const t = performance.now();
      await write(i);
      latencies.push(performance.now() - t);
    }
  }),
);
const ms = performance.now() - started;
await client.close();
process.stdout.write(`${JSON.stringify({ ms, latencies })}\n`);
