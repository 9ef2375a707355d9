import cronstrue from 'cronstrue';
import type { z } from 'zod';
import { ApiError } from '../lib/problem.js';
import type { CronPreview, CronPreviewQuery } from '../routes/cron/cron.schemas.js';
import { type CronRules, checkCron, cronKind, nextFiresWithDst } from './cron.js';
import { offsetAt } from './zone-offsets.js';

/** What a preview is of; `from`: list fires strictly after this instant, now when absent. */
type PreviewRequest = Pick<z.infer<typeof CronPreviewQuery>, 'cron' | 'timezone' | 'count' | 'from'>;

/**
 * `t` as local time in `zone` with its offset, ISO 8601: 2026-03-29T03:30:00+02:00 (seconds in
 * the offset only where the zone had them, e.g. Africa/Monrovia's -00:44:30 until 1972).
 */
export function localIso(t: Date, zone: string): string {
  const offset = offsetAt(zone, t.getTime());
  const wall = new Date(t.getTime() + offset).toISOString().slice(0, 19);
  const seconds = Math.abs(offset) / 1000;
  const pad = (n: number) => String(n).padStart(2, '0');
  const hhmm = `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}`;
  return `${wall}${offset < 0 ? '-' : '+'}${hhmm}${seconds % 60 ? `:${pad(seconds % 60)}` : ''}`;
}

/** cronstrue's English description, or null for the few expressions it cannot describe. */
function describe(cron: string): string | null {
  try {
    return cronstrue.toString(cron, { use24HourTimeFormat: true, throwExceptionOnParseError: true });
  } catch {
    return null;
  }
}

/**
 * The next fires of a cron in a zone, exactly as a job with them would fire (the same rules as
 * creating one, the same slot maths the workers use), for a client to show before saving.
 */
export function previewCron(
  request: PreviewRequest,
  rules: CronRules,
  now: Date = new Date(),
): z.infer<typeof CronPreview> {
  const cron = request.cron.trim();
  const problem = checkCron(cron, request.timezone, rules);
  if (problem)
    throw new ApiError('invalid-request', `Invalid cron: ${problem}.`, [
      { in: 'query', path: 'cron', message: problem },
    ]);
  const after = request.from ? new Date(request.from) : now;
  return {
    cron,
    timezone: request.timezone,
    description: describe(cron),
    kind: cronKind(cron),
    fires: nextFiresWithDst(cron, request.timezone, request.count, after).map(({ at, dst }) => ({
      utc: at.toISOString(),
      local: localIso(at, request.timezone),
      dst,
    })),
  };
}
