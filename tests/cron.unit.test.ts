import { CronExpressionParser } from 'cron-parser';
import { describe, expect, it } from 'vitest';
import {
  type CronRules,
  checkCron,
  isValidTimezone,
  minGapSeconds,
  nextFire,
  nextFires,
  slotAt,
} from '../src/scheduler/cron.js';

// Pure cron maths: no database, no clock (fixed instants throughout, except where the `after = now` default is the subject).

const DEFAULTS: CronRules = { allowSeconds: false, minIntervalSeconds: 60 };
const WITH_SECONDS: CronRules = { allowSeconds: true, minIntervalSeconds: 1 };
const DAY = 24 * 60 * 60;

const at = (iso: string) => new Date(iso);
const isoOf = (dates: Date[]) => dates.map((d) => d.toISOString());
const gapOf = (cron: string) => minGapSeconds(CronExpressionParser.parse(cron, { strict: false }));

/**
 * Every fire in [from, to), in order, as ISO strings, each computed from the one before with a fresh
 * nextFire: what the service does (each slot's successor is computed from that slot).
 */
function firesBetween(cron: string, timezone: string, from: string, to: string): string[] {
  const end = at(to).getTime();
  const out: string[] = [];
  let cursor = new Date(at(from).getTime() - 1); // nextFire is strictly after
  for (;;) {
    cursor = nextFire(cron, timezone, cursor);
    if (cursor.getTime() >= end) return out;
    out.push(cursor.toISOString());
  }
}

describe('checkCron: shape', () => {
  it('accepts five fields', () => {
    expect(checkCron('0 8 * * *', 'UTC', DEFAULTS)).toBeUndefined();
    expect(checkCron('*/15 9-17 * * 1-5', 'Europe/Berlin', DEFAULTS)).toBeUndefined();
  });

  it('ignores surrounding and repeated whitespace when counting fields', () => {
    expect(checkCron('  0   8 * *  *  ', 'UTC', DEFAULTS)).toBeUndefined();
  });

  it('refuses six fields unless seconds are allowed, then accepts them', () => {
    expect(checkCron('0 0 8 * * *', 'UTC', DEFAULTS)).toMatch(/seconds field \(six fields\) is not allowed/);
    expect(checkCron('0 0 8 * * *', 'UTC', { allowSeconds: true, minIntervalSeconds: 60 })).toBeUndefined();
  });

  it('refuses four and seven fields with a message naming the count', () => {
    expect(checkCron('0 8 * *', 'UTC', DEFAULTS)).toBe(
      'expected 5 fields (minute hour day-of-month month day-of-week), got 4',
    );
    expect(checkCron('0 0 8 * * * 2026', 'UTC', DEFAULTS)).toBe(
      'expected 5 fields (minute hour day-of-month month day-of-week), got 7',
    );
    // Seven stays refused even where six are allowed.
    expect(checkCron('0 0 8 * * * 2026', 'UTC', WITH_SECONDS)).toMatch(/got 7$/);
  });

  it('refuses macros such as @daily and @hourly', () => {
    for (const macro of ['@daily', '@hourly', '@weekly', ' @yearly']) {
      expect(checkCron(macro, 'UTC', WITH_SECONDS)).toBe(
        'macros such as @daily are not accepted; write the five fields',
      );
    }
  });

  it('refuses hashed values (H), which cron-parser randomises on every parse', () => {
    for (const cron of ['H * * * *', '0 H * * *', 'H(0-29) * * * *', '5,H/15 * * * *']) {
      expect(checkCron(cron, 'UTC', WITH_SECONDS)).toBe('hashed values (H) are not accepted; name the time');
    }
    // Day names are not hashes.
    expect(checkCron('0 8 * * THU', 'UTC', WITH_SECONDS)).toBeUndefined();
  });

  it("refuses out-of-range values with cron-parser's message", () => {
    expect(checkCron('61 * * * *', 'UTC', DEFAULTS)).toBe('Constraint error, got value 61 expected range 0-59');
    expect(checkCron('* 25 * * *', 'UTC', DEFAULTS)).toBe('Constraint error, got value 25 expected range 0-23');
    expect(checkCron('0 0 32 * *', 'UTC', DEFAULTS)).toBe('Constraint error, got value 32 expected range 1-31');
    expect(checkCron('0 0 * 13 *', 'UTC', DEFAULTS)).toBe('Constraint error, got value 13 expected range 1-12');
    expect(checkCron('60 * * * * *', 'UTC', WITH_SECONDS)).toBe('Constraint error, got value 60 expected range 0-59');
  });

  it('refuses garbage and dates that never exist', () => {
    expect(checkCron('a b c d e', 'UTC', DEFAULTS)).toBe('Invalid characters, got value: a');
    expect(checkCron('0 0 31 2 *', 'UTC', DEFAULTS)).toBe('Invalid explicit day of month definition');
  });
});

describe('checkCron: minimum interval', () => {
  it('"* * * * *" fires every 60 s: refused with a 120 s minimum, accepted with 60 s', () => {
    expect(checkCron('* * * * *', 'UTC', { allowSeconds: false, minIntervalSeconds: 120 })).toBe(
      'fires every 60 s at the shortest; the minimum interval is 120 s',
    );
    expect(checkCron('* * * * *', 'UTC', { allowSeconds: false, minIntervalSeconds: 60 })).toBeUndefined();
  });

  it('refuses a seconds cron closer than the minimum and accepts it at exactly the minimum', () => {
    expect(checkCron('*/5 * * * * *', 'UTC', { allowSeconds: true, minIntervalSeconds: 60 })).toBe(
      'fires every 5 s at the shortest; the minimum interval is 60 s',
    );
    expect(checkCron('*/5 * * * * *', 'UTC', { allowSeconds: true, minIntervalSeconds: 5 })).toBeUndefined();
  });

  it('uses the shortest gap, not the typical one: "0,1 * * * *" is refused with a 120 s minimum', () => {
    expect(checkCron('0,1 * * * *', 'UTC', { allowSeconds: false, minIntervalSeconds: 120 })).toMatch(
      /^fires every 60 s at the shortest/,
    );
  });

  it('counts the wrap over midnight: "0 23,0 * * *" is refused with a two-hour minimum', () => {
    expect(checkCron('0 23,0 * * *', 'UTC', { allowSeconds: false, minIntervalSeconds: 7200 })).toBe(
      'fires every 3600 s at the shortest; the minimum interval is 7200 s',
    );
  });
});

describe('minGapSeconds (parsed with CronExpressionParser.parse)', () => {
  it.each([
    ['* * * * *', 60],
    ['*/15 * * * *', 900],
    ['0 8,9 * * *', 3600],
    ['0 23,0 * * *', 3600], // 23:00 -> 00:00 across midnight
    ['0,30 8 * * *', 1800],
    ['0 8 * * *', DAY],
    ['59 23 * * *', DAY],
    ['0 0 * * *', DAY],
    ['0,1 * * * *', 60], // irregular: 1 min then 59 min
    ['0,59 0,23 * * *', 60], // 23:59 -> 00:00 wraps midnight
    ['0 9 * * 1', DAY], // day fields are ignored: a lower bound, not the weekly gap
    ['*/5 * * * * *', 5],
    ['0 */2 * * * *', 120],
    ['59 59 23 * * *', DAY],
    ['0,59 0,59 0,23 * * *', 1], // 23:59:59 -> 00:00:00
  ])('%s -> %i s', (cron, seconds) => {
    expect(gapOf(cron)).toBe(seconds);
  });

  it('agrees with the fires nextFires produces on a day without DST change', () => {
    for (const cron of ['0,1 * * * *', '0 23,0 * * *', '0,30 8 * * *', '7,19,44 */3 * * *']) {
      const fires = nextFires(cron, 'UTC', 60, at('2026-05-01T00:00:00Z'));
      const gaps = fires.slice(1).map((d, i) => (d.getTime() - fires[i]!.getTime()) / 1000);
      expect(Math.min(...gaps)).toBe(gapOf(cron));
    }
  });

  it('is the wall-clock gap: across the New York spring-forward "0 */2 * * *" fires an hour apart once (documented, allowed)', () => {
    // 02:00 does not exist on 2026-03-08; the policy moves it to 03:00 EDT (07:00Z), one hour
    // before the 04:00 EDT fire (08:00Z). The minimum interval bounds the pattern, not this.
    const cron = '0 */2 * * *';
    expect(gapOf(cron)).toBe(7200);
    expect(checkCron(cron, 'America/New_York', { allowSeconds: false, minIntervalSeconds: 7200 })).toBeUndefined();
    const fires = firesBetween(cron, 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-08T11:00:00Z');
    expect(fires.slice(0, 3)).toEqual([
      '2026-03-08T05:00:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T08:00:00.000Z',
    ]);
    const gaps = fires.slice(1).map((d, i) => (Date.parse(d) - Date.parse(fires[i]!)) / 1000);
    expect(Math.min(...gaps)).toBe(gapOf(cron) - 3600);
  });
});

describe('isValidTimezone', () => {
  it.each([
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'Asia/Kolkata',
    'America/Argentina/Buenos_Aires',
    'Etc/GMT+5',
    'US/Eastern',
  ])('accepts %s', (zone) => {
    expect(isValidTimezone(zone)).toBe(true);
  });

  it.each([
    'Mars/Olympus',
    '',
    '../etc',
    'Europe/Berlin; rm',
    '+01:00',
    'UTC lowercase?',
    'Europe/',
    '/Europe/Berlin',
    'Europe//Berlin',
    ' UTC',
  ])('refuses %j', (zone) => {
    expect(isValidTimezone(zone)).toBe(false);
  });

  it('accepts lower-case names, as Intl does, and they schedule exactly like the canonical spelling', () => {
    expect(isValidTimezone('utc')).toBe(true);
    expect(isValidTimezone('europe/berlin')).toBe(true);
    const after = at('2026-07-01T00:00:00Z');
    expect(nextFire('0 9 * * *', 'europe/berlin', after)).toEqual(nextFire('0 9 * * *', 'Europe/Berlin', after));
    expect(nextFire('0 9 * * *', 'utc', after)).toEqual(nextFire('0 9 * * *', 'UTC', after));
  });
});

describe('nextFire / nextFires', () => {
  it('nextFire is strictly after `after`: an exact slot gives the following one', () => {
    expect(nextFire('0 * * * *', 'UTC', at('2026-05-01T10:00:00Z'))).toEqual(at('2026-05-01T11:00:00Z'));
    expect(nextFire('0 * * * *', 'UTC', at('2026-05-01T09:59:59.999Z'))).toEqual(at('2026-05-01T10:00:00Z'));
  });

  it('nextFire defaults `after` to now', () => {
    const before = Date.now();
    const fire = nextFire('* * * * *', 'UTC').getTime();
    expect(fire).toBeGreaterThan(before);
    expect(fire).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(new Date(fire).getUTCSeconds()).toBe(0);
  });

  it('nextFires returns as many dates as asked, strictly increasing', () => {
    const fires = nextFires('*/7 9-10 * * 1-5', 'Europe/Berlin', 25, at('2026-03-27T07:00:00Z'));
    expect(fires).toHaveLength(25);
    for (let i = 1; i < fires.length; i++) expect(fires[i]!.getTime()).toBeGreaterThan(fires[i - 1]!.getTime());
    expect(nextFires('0 * * * *', 'UTC', 0, at('2026-05-01T00:00:00Z'))).toEqual([]);
    expect(nextFires('0 * * * *', 'UTC', 1, at('2026-05-01T00:00:00Z'))).toEqual([at('2026-05-01T01:00:00Z')]);
  });

  it('Asia/Kolkata (UTC+5:30, no DST): "0 9 * * *" fires at 03:30Z', () => {
    expect(isoOf(nextFires('0 9 * * *', 'Asia/Kolkata', 2, at('2026-05-01T00:00:00Z')))).toEqual([
      '2026-05-01T03:30:00.000Z',
      '2026-05-02T03:30:00.000Z',
    ]);
  });

  it('UTC: "0 0 1 * *" fires at midnight on the 1st of each month', () => {
    expect(isoOf(nextFires('0 0 1 * *', 'UTC', 3, at('2026-01-15T12:00:00Z')))).toEqual([
      '2026-02-01T00:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
      '2026-04-01T00:00:00.000Z',
    ]);
  });
});

describe('DST, America/New_York (2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST)', () => {
  it('spring forward: "30 2 * * *" (02:30 does not exist) fires once that day, at 03:30 EDT = 07:30Z; 07:30Z (02:30 EST) the day before, 06:30Z (02:30 EDT) the day after', () => {
    expect(isoOf(nextFires('30 2 * * *', 'America/New_York', 3, at('2026-03-07T00:00:00Z')))).toEqual([
      '2026-03-07T07:30:00.000Z',
      '2026-03-08T07:30:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
    // Local day 2026-03-08 runs from 05:00Z (00:00 EST) to 04:00Z next day (00:00 EDT).
    expect(firesBetween('30 2 * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')).toEqual([
      '2026-03-08T07:30:00.000Z',
    ]);
  });

  it('fall back: "30 1 * * *" (01:30 happens twice) fires once that day, at the first occurrence, 01:30 EDT = 05:30Z (not 01:30 EST = 06:30Z)', () => {
    // Local day 2026-11-01 runs from 04:00Z (00:00 EDT) to 05:00Z next day (00:00 EST).
    expect(firesBetween('30 1 * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z')).toEqual([
      '2026-11-01T05:30:00.000Z',
    ]);
    expect(isoOf(nextFires('30 1 * * *', 'America/New_York', 3, at('2026-10-31T00:00:00Z')))).toEqual([
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
  });

  it('spring forward: hourly "0 * * * *" fires 23 times in the local day, one hour apart, with no 02:00 (05:00Z .. 03:00Z next day)', () => {
    const fires = firesBetween('0 * * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z');
    expect(fires).toHaveLength(23);
    expect(fires[0]).toBe('2026-03-08T05:00:00.000Z'); // 00:00 EST
    expect(fires[1]).toBe('2026-03-08T06:00:00.000Z'); // 01:00 EST
    expect(fires[2]).toBe('2026-03-08T07:00:00.000Z'); // 03:00 EDT
    expect(fires[22]).toBe('2026-03-09T03:00:00.000Z'); // 23:00 EDT
    for (let i = 1; i < fires.length; i++) expect(Date.parse(fires[i]!) - Date.parse(fires[i - 1]!)).toBe(3_600_000);
  });

  it('fall back: hourly "0 * * * *" fires 25 times in the local day, one hour apart: 01:00 fires twice, 05:00Z (EDT) and 06:00Z (EST)', () => {
    const fires = firesBetween('0 * * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z');
    expect(fires).toHaveLength(25);
    expect(fires.slice(0, 4)).toEqual([
      '2026-11-01T04:00:00.000Z', // 00:00 EDT
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T07:00:00.000Z', // 02:00 EST
    ]);
    expect(fires[24]).toBe('2026-11-02T04:00:00.000Z'); // 23:00 EST
    for (let i = 1; i < fires.length; i++) expect(Date.parse(fires[i]!) - Date.parse(fires[i - 1]!)).toBe(3_600_000);
  });

  it('fall back: a cron naming hour 1 ("0,59 1 * * *") fires only in the first 01:00 hour (EDT), 05:00Z and 05:59Z', () => {
    expect(firesBetween('0,59 1 * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z')).toEqual([
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T05:59:00.000Z',
    ]);
  });

  it('spring forward: "*/15 2 * * *" names four times in the missing hour; each fires once, an hour later, 03:00-03:45 EDT (07:00Z-07:45Z)', () => {
    expect(firesBetween('*/15 2 * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')).toEqual([
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T07:15:00.000Z',
      '2026-03-08T07:30:00.000Z',
      '2026-03-08T07:45:00.000Z',
    ]);
    // From the last of them the next fire is 02:00 EDT the day after.
    expect(nextFire('*/15 2 * * *', 'America/New_York', at('2026-03-08T07:45:00.300Z'))).toEqual(
      at('2026-03-09T06:00:00Z'),
    );
  });

  it('nextFires and one chain of nextFire calls agree: "*/15 2 * * *" from before the New York spring-forward', () => {
    // Regression: chaining cron-parser itself from 07:00Z (03:00 EDT) jumped to the next day, so
    // the shifted 02:15, 02:30 and 02:45 never fired.
    const from = at('2026-03-08T05:00:00Z');
    expect(isoOf(nextFires('*/15 2 * * *', 'America/New_York', 6, from))).toEqual(
      firesBetween('*/15 2 * * *', 'America/New_York', from.toISOString(), '2026-03-09T06:30:00Z'),
    );
  });

  it('spring forward: "30 2,3 * * *" fires once that day at 03:30 EDT (07:30Z): the moved 02:30 and 03:30 coincide', () => {
    expect(firesBetween('30 2,3 * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')).toEqual([
      '2026-03-08T07:30:00.000Z',
    ]);
  });
});

describe('DST, Europe/Berlin (2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET)', () => {
  it('spring forward: "30 2 * * *" (02:30 does not exist) fires once that day, at 03:30 CEST = 01:30Z; 01:30Z (02:30 CET) the day before, 00:30Z (02:30 CEST) the day after', () => {
    expect(isoOf(nextFires('30 2 * * *', 'Europe/Berlin', 3, at('2026-03-28T00:00:00Z')))).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:30:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    // Local day 2026-03-29 runs from 23:00Z the day before to 22:00Z.
    expect(firesBetween('30 2 * * *', 'Europe/Berlin', '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z')).toEqual([
      '2026-03-29T01:30:00.000Z',
    ]);
  });

  it('fall back: "30 2 * * *" (02:30 happens twice) fires once that day, at the first occurrence, 02:30 CEST = 00:30Z (not 02:30 CET = 01:30Z)', () => {
    // Local day 2026-10-25 runs from 22:00Z the day before to 23:00Z.
    expect(firesBetween('30 2 * * *', 'Europe/Berlin', '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z')).toEqual([
      '2026-10-25T00:30:00.000Z',
    ]);
    expect(isoOf(nextFires('30 2 * * *', 'Europe/Berlin', 3, at('2026-10-24T00:00:00Z')))).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });
});

describe('slotAt', () => {
  it('an exact slot time returns that slot', () => {
    expect(slotAt('0 * * * *', 'UTC', at('2026-05-01T10:00:00.000Z'))).toEqual(at('2026-05-01T10:00:00Z'));
  });

  it('1 ms after a slot returns the same slot', () => {
    expect(slotAt('0 * * * *', 'UTC', at('2026-05-01T10:00:00.001Z'))).toEqual(at('2026-05-01T10:00:00Z'));
  });

  it('1 ms before a slot returns the previous slot', () => {
    expect(slotAt('0 * * * *', 'UTC', at('2026-05-01T09:59:59.999Z'))).toEqual(at('2026-05-01T09:00:00Z'));
  });

  it('a late fire belongs to the latest slot at or before it', () => {
    expect(slotAt('0 8 * * *', 'Europe/Berlin', at('2026-05-01T17:42:13Z'))).toEqual(at('2026-05-01T06:00:00Z'));
  });

  it('with a seconds cron "*/5 * * * * *", 10:00:07.250 returns 10:00:05', () => {
    expect(slotAt('*/5 * * * * *', 'UTC', at('2026-05-01T10:00:07.250Z'))).toEqual(at('2026-05-01T10:00:05Z'));
  });

  it('Asia/Kolkata: a fire at 03:30Z is the 09:00 IST slot', () => {
    expect(slotAt('0 9 * * *', 'Asia/Kolkata', at('2026-05-01T03:30:00.120Z'))).toEqual(at('2026-05-01T03:30:00Z'));
  });
});

/**
 * The runner keys a run on slotAt(fire time); it must give back the fire nextFire produced,
 * or the unique (jobId, scheduledFor) index mistakes one day's run for another's.
 */
function slotMismatches(cron: string, timezone: string, from: string, to: string): string[] {
  const fires = firesBetween(cron, timezone, from, to).map(at);
  const bad: string[] = [];
  fires.forEach((fire, i) => {
    const exact = slotAt(cron, timezone, fire);
    if (exact.getTime() !== fire.getTime()) bad.push(`at ${fire.toISOString()}: ${exact.toISOString()}`);
    const late = slotAt(cron, timezone, new Date(fire.getTime() + 250));
    if (late.getTime() !== fire.getTime()) bad.push(`at ${fire.toISOString()}+250ms: ${late.toISOString()}`);
    if (i > 0) {
      const before = slotAt(cron, timezone, new Date(fire.getTime() - 1));
      if (before.getTime() !== fires[i - 1]!.getTime())
        bad.push(`at ${fire.toISOString()}-1ms: ${before.toISOString()}, expected ${fires[i - 1]!.toISOString()}`);
    }
  });
  return bad;
}

describe('slotAt agrees with nextFire across DST', () => {
  it('hourly "0 * * * *" in New York, across the spring-forward and the fall-back', () => {
    expect(slotMismatches('0 * * * *', 'America/New_York', '2026-03-08T03:00:00Z', '2026-03-08T12:00:00Z')).toEqual([]);
    expect(slotMismatches('0 * * * *', 'America/New_York', '2026-11-01T03:00:00Z', '2026-11-01T12:00:00Z')).toEqual([]);
  });

  it('"*/20 * * * *" in Berlin, across both transitions', () => {
    expect(slotMismatches('*/20 * * * *', 'Europe/Berlin', '2026-03-29T00:00:00Z', '2026-03-29T03:00:00Z')).toEqual([]);
    expect(slotMismatches('*/20 * * * *', 'Europe/Berlin', '2026-10-25T00:00:00Z', '2026-10-25T03:00:00Z')).toEqual([]);
  });

  it('New York spring forward: the 07:30Z fire of "30 2 * * *" on 2026-03-08 is its own slot, not 2026-03-07T07:30Z', () => {
    // Regression: cron-parser's prev() skips the non-existent 02:30 instead of
    // moving it to 03:30 as next() does, so the 2026-03-08 fire is keyed on the 2026-03-07 slot and
    // the runner drops it as a duplicate.
    expect(slotAt('30 2 * * *', 'America/New_York', at('2026-03-08T07:30:00.250Z'))).toEqual(
      at('2026-03-08T07:30:00Z'),
    );
    expect(slotMismatches('30 2 * * *', 'America/New_York', '2026-03-06T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual(
      [],
    );
  });

  it('New York spring forward: the single 07:00Z fire of "*/15 2 * * *" on 2026-03-08 is its own slot, not 2026-03-07T07:45Z', () => {
    expect(slotAt('*/15 2 * * *', 'America/New_York', at('2026-03-08T07:00:00.250Z'))).toEqual(
      at('2026-03-08T07:00:00Z'),
    );
    expect(slotMismatches('*/15 2 * * *', 'America/New_York', '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual(
      [],
    );
  });

  it('Berlin spring forward: the 01:30Z fire of "30 2 * * *" on 2026-03-29 is its own slot, not 2026-03-28T01:30Z', () => {
    expect(slotAt('30 2 * * *', 'Europe/Berlin', at('2026-03-29T01:30:00.250Z'))).toEqual(at('2026-03-29T01:30:00Z'));
    expect(slotMismatches('30 2 * * *', 'Europe/Berlin', '2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([]);
  });

  it('New York fall back: after the single 05:30Z fire of "30 1 * * *", slotAt gives 05:30Z, never the unfired 06:30Z (01:30 EST)', () => {
    // Regression: prev() takes the second 01:30 (EST, 06:30Z), which next() never fires; a fire
    // handled more than an hour late, or the tail of that day, maps to a slot that does not exist.
    expect(slotAt('30 1 * * *', 'America/New_York', at('2026-11-01T12:00:00Z'))).toEqual(at('2026-11-01T05:30:00Z'));
    expect(slotMismatches('30 1 * * *', 'America/New_York', '2026-10-30T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual(
      [],
    );
  });

  it('Berlin fall back: after the single 00:30Z fire of "30 2 * * *", slotAt gives 00:30Z, never the unfired 01:30Z (02:30 CET)', () => {
    expect(slotAt('30 2 * * *', 'Europe/Berlin', at('2026-10-25T12:00:00Z'))).toEqual(at('2026-10-25T00:30:00Z'));
    expect(slotMismatches('30 2 * * *', 'Europe/Berlin', '2026-10-23T00:00:00Z', '2026-10-27T00:00:00Z')).toEqual([]);
  });
});
