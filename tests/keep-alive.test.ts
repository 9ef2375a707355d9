import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../src/routes/json-body.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// A keep-alive client (one pooled connection, as a mobile app's HTTP stack keeps them) against
// the real service: an answer after which the server closes the connection must say so, or the
// client's next request goes out on a closing connection and fails ("other side closed").

let h: Harness;
let agent: Agent;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  agent?.destroy();
  await h.stop();
});

interface Answer {
  status: number;
  connection: string | undefined;
  /** Whether the request went out on a connection the pool had kept from an earlier one. */
  reused: boolean;
  body: string;
  contentType: string | undefined;
}

/** One request through `agent`; `chunks` are written one by one (chunked unless Content-Length is set). */
function send(method: string, path: string, headers: Record<string, string>, chunks: string[] = []) {
  return new Promise<Answer>((ok, fail) => {
    const req = request(`${h.baseUrl}${path}`, { agent, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        ok({
          status: res.statusCode!,
          connection: res.headers.connection,
          reused: req.reusedSocket,
          body,
          contentType: res.headers['content-type'],
        }),
      );
    });
    req.on('error', fail);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

const auth = async () => ({ Authorization: `Bearer ${await h.token('keep-alive')}` });
const list = async () => send('GET', '/api/cron/jobs', await auth());
const pieces = (text: string, size: number) =>
  Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));
const oversize = JSON.stringify({ ...bodies.sendEmail(), padding: 'x'.repeat(16 * BODY_LIMIT_BYTES) });

describe('a keep-alive connection pool', () => {
  beforeAll(() => {
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
  });

  it('keeps the connection between ordinary requests (so the cases below can see it replaced)', async () => {
    expect((await list()).status).toBe(200);
    const second = await list();
    expect(second.status).toBe(200);
    expect(second.connection).toBe('keep-alive');
    expect(second.reused).toBe(true);
  });

  it.each([
    [
      'with Content-Length',
      (body: string) => ({ headers: { 'Content-Length': String(Buffer.byteLength(body)) }, chunks: [body] }),
    ],
    ['chunked', (body: string) => ({ headers: {}, chunks: pieces(body, 16_384) })],
  ])(
    'gets a 413 that says Connection: close for a body over the limit (%s), and its next request answered',
    async (_how, shape) => {
      const { headers, chunks } = shape(oversize);
      const refused = await send(
        'POST',
        '/api/cron/jobs',
        { ...(await auth()), 'Content-Type': 'application/json', ...headers },
        chunks,
      );
      // The same pool, at once: without the header this went out on the closing connection and failed.
      const next = await list();

      expect(refused.status).toBe(413);
      expect(refused.connection).toBe('close');
      assertMatchesSpec('/api/cron/jobs', 'POST', 413, refused.contentType ?? null, JSON.parse(refused.body));
      expect(JSON.parse(refused.body)).toMatchObject({ type: '/problems/payload-too-large' });
      // A new connection, and the normal answer.
      expect(next.status).toBe(200);
      expect(next.reused).toBe(false);
      expect(JSON.parse(next.body)).toHaveProperty('items');
    },
  );

  it('closes after any refusal sent before a large body arrived, and keeps the connection after a small one', async () => {
    const large = await send('POST', '/api/cron/jobs', { 'Content-Type': 'application/json' }, [oversize]);
    expect(large.status).toBe(401);
    expect(large.connection).toBe('close');
    expect((await list()).status).toBe(200);

    // A small body has arrived whole by the time it is refused: the connection stays usable.
    const small = await send('POST', '/api/cron/jobs', { ...(await auth()), 'Content-Type': 'text/plain' }, ['{}']);
    expect(small.status).toBe(415);
    expect(small.connection).toBe('keep-alive');
    const next = await list();
    expect(next.status).toBe(200);
    expect(next.reused).toBe(true);
  });

  it('answers the request after a 412 to a PUT on the same connection', async () => {
    const headers = { ...(await auth()), 'Content-Type': 'application/json' };
    const created = await send('POST', '/api/cron/jobs', headers, [JSON.stringify(bodies.generateReport('etag-412'))]);
    expect(created.status).toBe(201);
    const { id } = JSON.parse(created.body) as { id: string };
    const body = JSON.stringify(bodies.generateReport('etag-412-renamed'));
    const stale = await send('PUT', `/api/cron/jobs/${id}`, { ...headers, 'If-Match': '"stale"' }, [body]);
    expect(stale.status).toBe(412);
    const next = await list();
    expect(next.status, next.body).toBe(200);
  });
});
