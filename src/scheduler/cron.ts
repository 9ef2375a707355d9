/**
 * The slots of a cron in a time zone. cron-parser parses the expression and walks the wall
 * clock; this module turns wall-clock times into instants with one documented DST policy,
 * because cron-parser's own zone handling loses or invents fires at DST changes (see
 * tests/cron-dst.unit.test.ts, "cron-parser 5.10.6 on its own").
 *
 * The policy (docs/dst.md):
 * - An interval cron (hour field `*`: it fires in every hour) follows real elapsed time. It
 *   fires at every instant whose local time matches: nothing in a spring-forward gap (those
 *   wall-clock times never happen), both passes of a fall-back repeated hour (both really
 *   happen). `*\/15 * * * *` stays 15 real minutes apart through both changes.
 * - A fixed-time cron (it names hours: `30 2 * * *`, `0 9-17 * * 1-5`, `0 *\/2 * * *`) fires
 *   once for every local date and time it names, read as RFC 5545 reads a local time: a time
 *   in a spring-forward gap is taken with the offset before the gap, so it fires shifted by the
 *   gap's length (02:30 -> 03:30 in New York and Berlin); a time that happens twice fires at its
 *   first occurrence only. Two named times that land on one instant fire once.
 */
import { type CronExpression, CronExpressionParser } from 'cron-parser';
import { type Segment, segmentAt } from './zone-offsets.js';

/** What the service accepts as a cron expression; set from configuration. */
export interface CronRules {
  allowSeconds: boolean;
  minIntervalSeconds: number;
}

/**
 * How DST changed a fire, for fixed-time crons: `shifted` when its local time fell in a
 * spring-forward gap and it fires that long later; `repeated-once` when its local time happens
 * twice (fall back) and this, the first occurrence, is the only fire.
 */
export const DST_NOTES = ['shifted', 'repeated-once'] as const;
export type DstNote = (typeof DST_NOTES)[number] | null;

/** Which DST rule a cron follows: `interval` (fires in every hour) or `fixed-time` (names hours). */
export const CRON_KINDS = ['interval', 'fixed-time'] as const;
export type CronKind = (typeof CRON_KINDS)[number];

export interface Fire {
  at: Date;
  dst: DstNote;
}

const DAY_SECONDS = 24 * 60 * 60;
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;
// Offset segments to walk before giving up: far more than any accepted cron needs, few enough
// to stay fast.
const MAX_SEGMENTS = 400;
// Beyond any zone's UTC offset (they range from -12 to +14 hours).
const MAX_OFFSET = 15 * 3_600_000;

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

/**
 * The cron on a clock without DST: its dates are wall-clock times written as if they were UTC
 * ("naive" times), which cron-parser walks correctly. Every zone question is answered here.
 */
class WallClock {
  private readonly expression: CronExpression;
  /** Fires in every hour of the day: follows real time across DST changes. */
  readonly interval: boolean;

  constructor(readonly cron: string) {
    this.expression = parseNaive(cron, 0);
    this.interval = this.expression.fields.hour.values.length === 24;
  }

  /** The first wall-clock time the cron names strictly after `naive`. */
  after(naive: number): number {
    this.expression.reset(new Date(naive));
    return this.expression.next().getTime();
  }

  /** The last wall-clock time the cron names at or before `naive`. */
  atOrBefore(naive: number): number {
    this.expression.reset(new Date(naive + 1));
    return this.expression.prev().getTime();
  }
}

function parseNaive(cron: string, naive: number): CronExpression {
  return CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: new Date(naive), strict: false });
}

/**
 * The shortest gap between two fires, in seconds, from the parsed fields: every fire of a day
 * is one of hour x minute x second, so the shortest gap is the smallest step between
 * consecutive times of day (the wrap to the next day counted too). This is the gap of the
 * wall-clock pattern: a fixed-time cron's time shifted out of a spring-forward gap can land
 * up to the gap's length (an hour) closer to the next fire (02:00 shifted to 03:00, then
 * 04:00), which the minimum interval deliberately allows.
 */
export function minGapSeconds(expression: CronExpression): number {
  const { hour, minute, second } = expression.fields;
  const times: number[] = [];
  for (const h of hour.values)
    for (const m of minute.values) for (const s of second.values) times.push(h * 3600 + m * 60 + s);
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
  if (fields !== 5 && fields !== 6)
    return `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields}`;
  // cron-parser's hashed values (H) pick a random time on every parse unless seeded: each
  // worker would compute other slots.
  if (trimmed.split(/\s+/).some((field) => field.split(',').some((part) => /^H($|[(/])/i.test(part)))) {
    return 'hashed values (H) are not accepted; name the time';
  }
  let expression: CronExpression;
  try {
    const clock = new WallClock(trimmed);
    expression = parseNaive(trimmed, Date.now());
    expression.next();
    if (isValidTimezone(timezone)) fireAfter(clock, timezone, Date.now());
  } catch (error) {
    return (error as Error).message;
  }
  const gap = minGapSeconds(expression);
  if (gap < rules.minIntervalSeconds) {
    return `fires every ${gap} s at the shortest; the minimum interval is ${rules.minIntervalSeconds} s`;
  }
  return undefined;
}

/** The DST rule `cron` follows; see the top of this file. */
export function cronKind(cron: string): CronKind {
  return new WallClock(cron.trim()).interval ? 'interval' : 'fixed-time';
}

/**
 * The earliest fire in segment `seg` strictly after instant `t` (t + 1 lies in `seg`), and the
 * first wall-clock time the cron names after t's. Inside a segment the offset `o` is fixed, so
 * wall-clock time L fires at L - o; at its start a fixed-time cron also fires the gap's times
 * (shifted) or skips the repeated ones.
 */
function firstIn(clock: WallClock, seg: Segment, t: number): { fire?: Fire; local: number } {
  const fixed = !clock.interval;
  const o = seg.offset;
  const op = seg.prevOffset;
  // Wall-clock times in [start + o, start + op) already fired before the fall-back.
  const from = fixed && op > o ? Math.max(t + o, seg.start + op - 1) : t + o;
  let fire: Fire | undefined;
  const local = clock.after(from);
  if (local - o < seg.end) {
    // The wall-clock times in [end + nextOffset, end + o) come again after a fall-back at `end`.
    const repeats = fixed && seg.nextOffset < o && local >= seg.end + seg.nextOffset;
    fire = { at: new Date(local - o), dst: repeats ? 'repeated-once' : null };
  }
  if (fixed && op < o) {
    // Wall-clock times in [start + op, start + o) never happen: read with the offset before.
    const gapTime = clock.after(Math.max(t + op, seg.start + op - 1));
    if (gapTime < seg.start + o && gapTime - op < seg.end && (!fire || gapTime - op <= fire.at.getTime())) {
      fire = { at: new Date(gapTime - op), dst: 'shifted' };
    }
  }
  return fire ? { fire, local } : { local };
}

/** The latest fire in segment `seg` at or before instant `t` (t lies in `seg`); mirrors firstIn. */
function lastIn(clock: WallClock, seg: Segment, t: number): { fire?: Date; local: number } {
  const fixed = !clock.interval;
  const o = seg.offset;
  const op = seg.prevOffset;
  const lowest = fixed && op > o ? seg.start + op : seg.start + o;
  let best: number | undefined;
  const local = clock.atOrBefore(t + o);
  if (local >= lowest) best = local - o;
  if (fixed && op < o) {
    const gapTime = clock.atOrBefore(Math.min(t + op, seg.start + o - 1));
    if (gapTime >= seg.start + op && (best === undefined || gapTime - op > best)) best = gapTime - op;
  }
  return best === undefined ? { local } : { fire: new Date(best), local };
}

/*
 * Skipping ahead: a fire is some named wall-clock time N read with some offset, N - offset,
 * and no offset is beyond MAX_OFFSET. Searching after t, with L the first named time after
 * t + o: a fire from N >= L is at L - MAX_OFFSET or later, and one from N <= t + o is at
 * t + o + MAX_OFFSET or earlier. So once a segment without fires reaches past the second
 * bound, nothing fires before L - MAX_OFFSET, and a cron that fires every four years (29
 * February) does not make the search walk every DST change in between. Mirrored backwards.
 */
function fireAfter(clock: WallClock, timezone: string, t: number): Fire {
  for (let i = 0; i < MAX_SEGMENTS; i++) {
    const seg = segmentAt(timezone, t + 1);
    const { fire, local } = firstIn(clock, seg, t);
    if (fire) return fire;
    const next = seg.end - 1;
    t = next >= t + seg.offset + MAX_OFFSET ? Math.max(next, local - MAX_OFFSET - 1) : next;
  }
  throw new Error(`no fire of "${clock.cron}" found in ${timezone}`);
}

/** The latest fire at or before instant `t`. */
function fireAtOrBefore(clock: WallClock, timezone: string, t: number): Date {
  for (let i = 0; i < MAX_SEGMENTS; i++) {
    const seg = segmentAt(timezone, t);
    const { fire, local } = lastIn(clock, seg, t);
    if (fire) return fire;
    const previous = seg.start - 1;
    t = previous <= t + seg.offset - MAX_OFFSET ? Math.min(previous, local + MAX_OFFSET) : previous;
  }
  throw new Error(`no fire of "${clock.cron}" found in ${timezone}`);
}

/** The first fire strictly after `after`, in the job's timezone. */
export function nextFire(cron: string, timezone: string, after: Date = new Date()): Date {
  return fireAfter(new WallClock(cron), timezone, after.getTime()).at;
}

/** The next `count` fires strictly after `after`, each with how DST changed it (see DstNote). */
export function nextFiresWithDst(cron: string, timezone: string, count: number, after: Date = new Date()): Fire[] {
  const clock = new WallClock(cron);
  const fires: Fire[] = [];
  for (let cursor = after.getTime(); fires.length < count; cursor = fires[fires.length - 1]!.at.getTime()) {
    fires.push(fireAfter(clock, timezone, cursor));
  }
  return fires;
}

/** The next `count` fires strictly after `after`: nextFire chained. */
export function nextFires(cron: string, timezone: string, count: number, after: Date = new Date()): Date[] {
  return nextFiresWithDst(cron, timezone, count, after).map((fire) => fire.at);
}

/**
 * The slots s with after < s <= until, ascending, at most `limit`: nextFire chained from
 * `after`, e.g. the slots a job missed while no worker ran it.
 */
export function slotsBetween(cron: string, timezone: string, after: Date, until: Date, limit: number): Date[] {
  const clock = new WallClock(cron);
  const slots: Date[] = [];
  for (let cursor = after.getTime(); slots.length < limit; ) {
    const slot = fireAfter(clock, timezone, cursor).at;
    if (slot.getTime() > until.getTime()) break;
    slots.push(slot);
    cursor = slot.getTime();
  }
  return slots;
}

/**
 * The slot a fire at `at` belongs to: the latest fire at or before it. Every worker computes
 * the same value, which is what the runs collection's unique index keys on. Exact both ways:
 * slotAt(nextFire(t)) is nextFire(t), and nextFire(slotAt(t)) is the first fire after t.
 */
export function slotAt(cron: string, timezone: string, at: Date): Date {
  return fireAtOrBefore(new WallClock(cron), timezone, at.getTime());
}
