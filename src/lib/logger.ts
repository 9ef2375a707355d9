import { type DestinationStream, type Logger, pino, stdSerializers, stdTimeFunctions } from 'pino';
import type { Env } from '../env.js';

export type { Logger };

/** Fields that may hold a credential wherever they appear (pino redact paths, two levels deep). */
const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'cookie',
  'token',
  'password',
  'secret',
  'JWT_SECRET',
  'SMTP_URL',
  'MONGODB_URI',
];
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

const JWT_LIKE = /\beyJ[\w-]*\.[\w-]*\.[\w-]*/g;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+(?::[^\s/@]*)?@/gi;

/**
 * Takes tokens and URL passwords out of free text: driver and mailer errors quote the
 * connection string (mongodb://user:pass@..., smtp://user:pass@...), and a failed verification
 * could quote a token.
 */
export function scrub(text: string): string {
  return text.replace(JWT_LIKE, '[redacted-token]').replace(URL_CREDENTIALS, '$1[redacted]@');
}

function scrubbedError(error: Error) {
  const out = stdSerializers.err(error);
  if (typeof out.message === 'string') out.message = scrub(out.message);
  if (typeof out.stack === 'string') out.stack = scrub(out.stack);
  return out;
}

/**
 * The one logger. Pretty output only in development; JSON lines everywhere else. Credentials
 * never reach the log: known keys are replaced by pino's redaction, and error texts and
 * messages are scrubbed of tokens and URL passwords. `destination` is for tests that read it.
 */
export function createLogger(config: Pick<Env, 'LOG_LEVEL' | 'NODE_ENV'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.LOG_LEVEL,
    base: { pid: process.pid },
    // "time":"2026-12-07T18:14:23.512Z": readable in PM2's log files and by any log shipper.
    timestamp: stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: scrubbedError, error: scrubbedError },
    hooks: {
      logMethod(args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? scrub(a) : a)),
        );
      },
    },
  };
  if (destination) return pino(options, destination);
  return pino({
    ...options,
    ...(config.NODE_ENV === 'development'
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  });
}
