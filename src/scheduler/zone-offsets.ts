/**
 * A time zone's UTC offsets and the instants they change (DST and other transitions), from the
 * runtime's own tz data (Intl), with no dependency: the cron maths in cron.ts needs to know, for
 * any instant, which offset is in force, since when, and until when.
 */

const SECOND = 1000;
// Sampling step when looking for transitions: zones change offset a few times a year, weeks
// apart at the closest; two changes that cancel out within one day would go unseen.
const STEP = 24 * 3_600_000;
// Zone-years kept: plenty for every zone in use over decades, while a client asking for many
// zones and far years cannot grow it without bound.
const MAX_CACHED_YEARS = 20_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    // h23: 'hour12: false' would print midnight as 24 in some runtimes.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The zone's UTC offset in ms at instant `t` (local wall time = t + offset). */
export function offsetAt(zone: string, t: number): number {
  const whole = Math.floor(t / SECOND) * SECOND;
  const parts: Record<string, string> = {};
  for (const { type, value } of formatter(zone).formatToParts(whole)) parts[type] = value;
  const year = parts.era === 'BC' || parts.era === 'B' ? 1 - Number(parts.year) : Number(parts.year);
  const local = Date.UTC(
    year,
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  // Date.UTC maps years 0-99 to 1900-1999.
  const fixed = year >= 0 && year < 100 ? new Date(local).setUTCFullYear(year) : local;
  return fixed - whole;
}

/** An offset change: from `at` on, local time is t + `after` instead of t + `before`. */
interface Transition {
  at: number;
  before: number;
  after: number;
}

const transitionsByYear = new Map<string, Transition[]>();

/** The transitions in (start of `year`, start of `year + 1`] UTC, cached: computed once per zone and year. */
function transitionsIn(zone: string, year: number): Transition[] {
  const key = `${zone}\n${year}`;
  let found = transitionsByYear.get(key);
  if (found) return found;
  found = [];
  const end = Date.UTC(year + 1, 0, 1);
  let from = Date.UTC(year, 0, 1);
  let current = offsetAt(zone, from);
  while (from < end) {
    const to = Math.min(from + STEP, end);
    if (offsetAt(zone, to) === current) {
      from = to;
      continue;
    }
    // Offsets change on whole seconds: bisect to the first second with another offset.
    let lo = from;
    let hi = to;
    while (hi - lo > SECOND) {
      const mid = lo + Math.floor((hi - lo) / (2 * SECOND)) * SECOND;
      if (offsetAt(zone, mid) === current) lo = mid;
      else hi = mid;
    }
    const after = offsetAt(zone, hi);
    found.push({ at: hi, before: current, after });
    current = after;
    from = hi;
  }
  if (transitionsByYear.size >= MAX_CACHED_YEARS) transitionsByYear.clear();
  transitionsByYear.set(key, found);
  return found;
}

/**
 * A stretch of time with one offset: from `start` (inclusive) to `end` (exclusive), preceded by
 * `prevOffset` and followed by `nextOffset`. A boundary may be artificial (a year edge with no
 * change around it), in which case the neighbouring offset equals `offset`.
 */
export interface Segment {
  start: number;
  end: number;
  offset: number;
  prevOffset: number;
  nextOffset: number;
}

/**
 * The segment holding instant `t`; looks at the neighbouring years only when `t`'s own has no
 * change before or after it.
 */
export function segmentAt(zone: string, t: number): Segment {
  const year = new Date(t).getUTCFullYear();
  const own = transitionsIn(zone, year);
  const previous = own.findLast((tr) => tr.at <= t) ?? transitionsIn(zone, year - 1).at(-1);
  const next = own.find((tr) => tr.at > t) ?? transitionsIn(zone, year + 1)[0];
  const offset = previous ? previous.after : offsetAt(zone, t);
  return {
    start: previous ? previous.at : Date.UTC(year - 1, 0, 1),
    end: next ? next.at : Date.UTC(year + 2, 0, 1),
    offset,
    prevOffset: previous ? previous.before : offset,
    nextOffset: next ? next.after : offset,
  };
}
