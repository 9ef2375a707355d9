import { CronExpressionParser, type CronExpression } from 'cron-parser';

/** What the service accepts as a cron expression; set from configuration. */
export interface CronRules {
  allowSeconds: boolean;
  minIntervalSeconds: number;
}

const DAY_SECONDS = 24 * 60 * 60;
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

/** True for IANA zone names the runtime knows (aliases such as US/Eastern included). */
export function isValidTimezone(zone: string): boolean {
  if (!ZONE_NAME.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function parse(cron: string, timezone: string, currentDate: Date): CronExpression {
  return CronExpressionParser.parse(cron, { tz: timezone, currentDate, strict: false });
}

/**
 * The shortest gap between two fires, in seconds, from the parsed fields: every fire of a day
 * is one of hour x minute x second, so the shortest gap is the smallest step between
 * consecutive times of day (the wrap to the next day counted too). This is the gap of the
 * wall-clock pattern: once a year a spring-forward change can bring two fires up to an hour
 * closer (02:00 shifted to 03:00, then 04:00), which the minimum interval deliberately allows.
 */
export function minGapSeconds(expression: CronExpression): number {
  const { hour, minute, second } = expression.fields;
  const times: number[] = [];
  for (const h of hour.values) for (const m of minute.values) for (const s of second.values) times.push(h * 3600 + m * 60 + s);
  times.sort((a, b) => a - b);
  if (times.length < 2) return DAY_SECONDS;
  let gap = DAY_SECONDS - times[times.length - 1]! + times[0]!;
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i]! - times[i - 1]!);
  return gap;
}

/**
 * Validates a cron expression against the rules; returns the reason it is refused, or
 * undefined when it is fine. Five fields; six (leading seconds) only when allowed.
 */
export function checkCron(cron: string, timezone: string, rules: CronRules): string | undefined {
  const trimmed = cron.trim();
  if (trimmed.startsWith('@')) return 'macros such as @daily are not accepted; write the five fields';
  const fields = trimmed.split(/\s+/).length;
  if (fields === 6 && !rules.allowSeconds) return 'a seconds field (six fields) is not allowed; use five fields';
  if (fields !== 5 && fields !== 6) return `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields}`;
  // cron-parser's hashed values (H) pick a random time on every parse unless seeded, and Agenda
  // cannot pass a seed: each worker would compute other slots.
  if (trimmed.split(/\s+/).some((field) => field.split(',').some((part) => /^H($|[(/])/i.test(part)))) {
    return 'hashed values (H) are not accepted; name the time';
  }
  let expression: CronExpression;
  try {
    expression = parse(trimmed, timezone, new Date());
    expression.next();
  } catch (error) {
    return (error as Error).message;
  }
  const gap = minGapSeconds(expression);
  if (gap < rules.minIntervalSeconds) {
    return `fires every ${gap} s at the shortest; the minimum interval is ${rules.minIntervalSeconds} s`;
  }
  return undefined;
}

/** The first fire strictly after `after`, in the job's timezone. */
export function nextFire(cron: string, timezone: string, after: Date = new Date()): Date {
  return parse(cron, timezone, after).next().toDate();
}

/**
 * The next `count` fires strictly after `after`, each computed from the one before, as Agenda
 * does: one cron-parser iterator would list times a DST change makes Agenda skip.
 */
export function nextFires(cron: string, timezone: string, count: number, after: Date = new Date()): Date[] {
  const fires: Date[] = [];
  for (let cursor = after; fires.length < count; ) fires.push((cursor = nextFire(cron, timezone, cursor)));
  return fires;
}

/**
 * The slot a fire at `at` belongs to: the latest fire at or before it, in the chain of
 * `nextFire`s that Agenda follows. Every worker that fires the same slot computes the same
 * value, which is what the runs collection's unique index keys on; Agenda's clock is not used.
 */
export function slotAt(cron: string, timezone: string, at: Date): Date {
  // cron-parser's prev() does not mirror next() across DST (it skips a shifted spring-forward
  // time and picks the second of a repeated fall-back time), so it only finds a point safely
  // before `at`; walking forward with nextFire lands on the fire Agenda actually made.
  const back = parse(cron, timezone, new Date(at.getTime() + 1));
  back.prev();
  let slot = back.prev().toDate();
  for (;;) {
    const next = nextFire(cron, timezone, slot);
    if (next.getTime() > at.getTime()) return slot;
    slot = next;
  }
}
