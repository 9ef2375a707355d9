// The API benchmark's baseline (bench/api.ts): a bare node:http server that does, for each route,
// the same database operation as our service with the mongodb driver, and nothing else: no
// framework, no validation, no authentication (the owner comes in plain as X-Owner), no rate
// limits, no mapping. Whatever our API costs beyond it is the price of the service around the query.
// Started as its own process: MONGODB_URI (with the database in its path) and PORT.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { MongoClient, ObjectId } from 'mongodb';

const uri = process.env.MONGODB_URI;
const port = Number(process.env.PORT);
if (!uri || !port) throw new Error('MONGODB_URI and PORT are required');

const client = await new MongoClient(uri).connect();
const jobs = client.db().collection('cron_jobs');
const audit = client.db().collection('audit_logs');
/** The service's default cap (MAX_JOBS_PER_OWNER). */
const MAX_JOBS_PER_OWNER = 50;

const send = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
};

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const ownerId = String(req.headers['x-owner']);
  const one = /^\/api\/cron\/jobs\/([0-9a-f]{24})$/.exec(url.pathname);
  if (req.method === 'GET' && one) {
    // CronJobService.get: the job by id and owner.
    const job = await jobs.findOne({ _id: new ObjectId(one[1]), ownerId });
    return job ? send(res, 200, job) : send(res, 404, { error: 'not found' });
  }
  if (req.method === 'GET' && url.pathname === '/api/cron/jobs') {
    // CronJobService.list: the owner's jobs by _id, one more than the page to know if another follows.
    const limit = Number(url.searchParams.get('limit') ?? 20);
    const items = await jobs
      .find({ ownerId })
      .sort({ _id: 1 })
      .limit(limit + 1)
      .toArray();
    return send(res, 200, {
      items: items.slice(0, limit),
      nextCursor: items.length > limit ? String(items[limit - 1]!._id) : null,
    });
  }
  if (req.method === 'POST' && url.pathname === '/api/cron/jobs') {
    // CronJobService.create: the owner's jobs counted against the cap (mongoose's countDocuments is
    // this aggregate), the job inserted, then its audit record.
    const body = await readJson(req);
    const [counted] = await jobs.aggregate([{ $match: { ownerId } }, { $group: { _id: 1, n: { $sum: 1 } } }]).toArray();
    if ((counted?.n ?? 0) >= MAX_JOBS_PER_OWNER) return send(res, 409, { error: 'job limit reached' });
    const now = new Date();
    const job = { ...body, ownerId, createdAt: now, updatedAt: now };
    const { insertedId } = await jobs.insertOne(job);
    await audit.insertOne({ actorId: ownerId, action: 'create', jobId: insertedId, ownerId, changes: null, at: now });
    return send(res, 201, { ...job, _id: insertedId });
  }
  if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
  send(res, 404, { error: 'no route' });
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: Error) => send(res, 500, { error: error.message }));
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`bare baseline listening on ${port}\n`));

const stop = () => {
  server.close(() => void client.close().then(() => process.exit(0)));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
