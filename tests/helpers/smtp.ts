import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';

export interface Delivery {
  messageId: string;
  to: string;
  subject: string;
  at: Date;
}

/**
 * A real SMTP server on loopback whose behaviour each job chooses through its recipient's
 * local part, so one server can play every failure:
 * - `delay-<ms>@…` accepts after <ms> (a slow handler);
 * - `hang@…` never answers the message (a handler that hangs);
 * - `fail-<n>@…` answers 451 (temporary) to the first <n> attempts of each message;
 * - `reject@…` answers 550 (permanent);
 * anything else is accepted at once. Every accepted message is kept, keyed by its Message-ID
 * (the run id), so side effects can be counted against recorded runs.
 */
export async function startSmtp() {
  const delivered: Delivery[] = [];
  const attempts = new Map<string, number>();
  const hanging = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, done) {
      if (address.address.startsWith('reject@')) {
        return done(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }));
      }
      done();
    },
    onData(stream: SMTPServerDataStream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const messageId = /^Message-ID:\s*(\S+)/im.exec(raw)?.[1] ?? '';
        const subject = /^Subject:\s*(.*)$/im.exec(raw)?.[1]?.trim() ?? '';
        const to = session.envelope.rcptTo[0]?.address ?? '';
        const local = to.split('@')[0]!;
        const tries = (attempts.get(messageId) ?? 0) + 1;
        attempts.set(messageId, tries);
        const failFirst = /^fail-(\d+)$/.exec(local);
        if (failFirst && tries <= Number(failFirst[1])) {
          return done(Object.assign(new Error('try again later'), { responseCode: 451 }));
        }
        const accept = () => {
          delivered.push({ messageId, to, subject, at: new Date() });
          done();
        };
        if (local === 'hang') {
          hanging.add(() => done(Object.assign(new Error('closing'), { responseCode: 421 })));
          return;
        }
        const delay = /^delay-(\d+)$/.exec(local);
        if (delay) setTimeout(accept, Number(delay[1]));
        else accept();
      });
    },
  });
  // A client that dies mid-session (a worker killed by a fault test or a benchmark) resets its
  // connection; that is the scenario, not a failure of the server, and unhandled it would crash us.
  server.on('error', () => undefined);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    delivered,
    /** Delivery attempts per Message-ID, refused ones included. */
    attempts,
    close: () =>
      new Promise<void>((ok) => {
        for (const release of hanging) release();
        server.close(() => ok());
      }),
  };
}

export type Smtp = Awaited<ReturnType<typeof startSmtp>>;

/** The run id in a Message-ID of the form <run-ID@cron-jobs>. */
export const runIdOf = (messageId: string) => /<run-([0-9a-f]{24})@/.exec(messageId)?.[1];
