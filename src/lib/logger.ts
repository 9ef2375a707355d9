import { pino, type Logger } from 'pino';
import type { Env } from '../env.js';

export type { Logger };

/** The one logger. Pretty output only in development; JSON lines everywhere else. */
export function createLogger(config: Pick<Env, 'LOG_LEVEL' | 'NODE_ENV'>): Logger {
  return pino({
    level: config.LOG_LEVEL,
    base: { pid: process.pid },
    ...(config.NODE_ENV === 'development'
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  });
}
