import { MongoClient } from 'mongodb';
const c = new MongoClient(process.argv[2]!);
await c.connect();
for (let i = 0; i < 40; i++) {
  const dbs = (await c.db().admin().listDatabases()).databases.map((d) => d.name).filter((n) => n.startsWith('ours'));
  for (const name of dbs) {
    const db = c.db(name);
    const agenda = await db.collection('agendaJobs').countDocuments({}).catch(() => -1);
    const names = await db.collection('agendaJobs').distinct('name').catch(() => []);
    const runs = await db.collection('cron_job_runs').aggregate([{ $group: { _id: { s: '$status', w: '$worker' }, n: { $sum: 1 } } }]).toArray().catch(() => []);
    console.log(new Date().toISOString(), name, 'agenda', agenda, names, JSON.stringify(runs));
  }
  await new Promise((r) => setTimeout(r, 3000));
}
await c.close();
