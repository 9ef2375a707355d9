import { CronExpressionParser } from 'cron-parser';

/**
 * A slow, obviously-correct statement of the DST policy, for checking src/scheduler/cron.ts
 * against: list every wall-clock time the cron names (cron-parser on a UTC clock, where it has
 * no DST to get wrong), find each one's instants with a brute-force offset test, and apply the
 * rule in docs/dst.md. Offsets come from Intl's `longOffset` name, not from the code under test.
 */

const HOUR = 3_600_000;

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's UTC offset in ms at instant t, read from Intl's "GMT+05:30" style name. */
export function offsetOf(zone: string, t: number): number {
  let f = offsetFormatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    offsetFormatters.set(zone, f);
  }
  const name = f.formatToParts(t).find((p) => p.type === 'timeZoneName')!.value;
  const m = /^GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(name);
  if (!m) throw new Error(`unexpected offset name ${name}`);
  if (!m[1]) return 0;
  const ms = (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4] ?? 0)) * 1000;
  return m[1] === '-' ? -ms : ms;
}

export interface OracleFire {
  at: string;
  dst: 'shifted' | 'repeated-once' | null;
}

/** The fires in (from, to], per the policy: interval crons on real time, fixed-time crons per RFC 5545. */
export function oracleFires(cron: string, zone: string, from: string, to: string): OracleFire[] {
  const start = Date.parse(from);
  const end = Date.parse(to);
  const naive = CronExpressionParser.parse(cron, {
    tz: 'UTC',
    currentDate: new Date(start - 15 * HOUR),
    strict: false,
  });
  const interval = naive.fields.hour.values.length === 24;
  const byTime = new Map<number, OracleFire['dst']>();
  const add = (t: number, dst: OracleFire['dst']) => {
    if (byTime.get(t) !== 'shifted') byTime.set(t, dst);
  };
  for (;;) {
    const local = naive.next().getTime();
    if (local > end + 15 * HOUR) break;
    // At most one offset change lies within 30 hours of any instant in the zones tested.
    const before = offsetOf(zone, local - 30 * HOUR);
    const after = offsetOf(zone, local + 30 * HOUR);
    const instants = [...new Set([before, after])]
      .filter((o) => offsetOf(zone, local - o) === o)
      .map((o) => local - o)
      .sort((a, b) => a - b);
    if (interval) for (const t of instants) add(t, null);
    else if (instants.length === 0) add(local - before, 'shifted');
    else add(instants[0]!, instants.length > 1 ? 'repeated-once' : null);
  }
  return [...byTime]
    .filter(([t]) => t > start && t <= end)
    .sort(([a], [b]) => a - b)
    .map(([t, dst]) => ({ at: new Date(t).toISOString(), dst }));
}
