import { CronExpressionParser } from 'cron-parser';
import { describe, expect, it } from 'vitest';
import { cronKind, nextFire, nextFiresWithDst, slotAt, slotsBetween } from '../src/scheduler/cron.js';
import { localIso } from '../src/scheduler/preview.js';
import { oracleFires } from './helpers/dst-oracle.js';

// The DST policy of src/scheduler/cron.ts, for fixed instants (no clock, no waiting):
// - interval crons (hour field `*`) follow real elapsed time;
// - fixed-time crons fire every local time they name once: shifted by the gap's length when a
//   spring-forward skips it, at the first occurrence when a fall-back repeats it.
// Changes used: New York 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z), 2026-11-01 02:00 EDT ->
// 01:00 EST (06:00Z); Berlin 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z), 2026-10-25 03:00 CEST
// -> 02:00 CET (01:00Z). Asia/Kolkata (+05:30) and UTC have no DST.

const NY = 'America/New_York';
const BERLIN = 'Europe/Berlin';
const KOLKATA = 'Asia/Kolkata';

const at = (iso: string) => new Date(iso);

/** Every fire in (from, to] with its DST note and local time, from one chain of nextFire calls. */
function fires(cron: string, zone: string, from: string, to: string) {
  const end = Date.parse(to);
  const out: { utc: string; local: string; dst: string | null }[] = [];
  for (let cursor = at(from); ; ) {
    const [fire] = nextFiresWithDst(cron, zone, 1, cursor);
    if (fire!.at.getTime() > end) return out;
    out.push({ utc: fire!.at.toISOString(), local: localIso(fire!.at, zone), dst: fire!.dst });
    cursor = fire!.at;
  }
}

const locals = (list: { local: string }[]) => list.map((f) => f.local);
const gapsSeconds = (list: { utc: string }[]) =>
  list.slice(1).map((f, i) => (Date.parse(f.utc) - Date.parse(list[i]!.utc)) / 1000);

describe('cronKind: the hour field decides the DST rule', () => {
  it.each([
    ['*/15 * * * *', 'interval'],
    ['0 * * * *', 'interval'],
    ['*/10 * * * * *', 'interval'],
    ['0 0-23 * * *', 'interval'],
    ['30 2 * * *', 'fixed-time'],
    ['0 9-17 * * 1-5', 'fixed-time'],
    ['0 */2 * * *', 'fixed-time'],
    ['*/15 2 * * *', 'fixed-time'],
  ])('%s is %s', (cron, kind) => {
    expect(cronKind(cron)).toBe(kind);
  });
});

describe('fixed-time cron in the spring-forward gap: fires once, shifted by the gap (one hour)', () => {
  it('New York "30 2 * * *": 02:30 EST, then 03:30 EDT on 2026-03-08 (marked shifted), then 02:30 EDT', () => {
    expect(fires('30 2 * * *', NY, '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual([
      { utc: '2026-03-07T07:30:00.000Z', local: '2026-03-07T02:30:00-05:00', dst: null },
      { utc: '2026-03-08T07:30:00.000Z', local: '2026-03-08T03:30:00-04:00', dst: 'shifted' },
      { utc: '2026-03-09T06:30:00.000Z', local: '2026-03-09T02:30:00-04:00', dst: null },
    ]);
  });

  it('Berlin "30 2 * * *": 03:30 CEST on 2026-03-29 (marked shifted)', () => {
    expect(fires('30 2 * * *', BERLIN, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z')).toEqual([
      { utc: '2026-03-29T01:30:00.000Z', local: '2026-03-29T03:30:00+02:00', dst: 'shifted' },
      { utc: '2026-03-30T00:30:00.000Z', local: '2026-03-30T02:30:00+02:00', dst: null },
    ]);
  });

  it('every named time in the gap fires once: "0,30 2 * * *" in New York fires 03:00 and 03:30 EDT', () => {
    expect(fires('0,30 2 * * *', NY, '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')).toEqual([
      { utc: '2026-03-08T07:00:00.000Z', local: '2026-03-08T03:00:00-04:00', dst: 'shifted' },
      { utc: '2026-03-08T07:30:00.000Z', local: '2026-03-08T03:30:00-04:00', dst: 'shifted' },
    ]);
  });

  it('a shifted time that lands on a named one fires once: "30 2,3 * * *" in Berlin fires 03:30 CEST once', () => {
    expect(fires('30 2,3 * * *', BERLIN, '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z')).toEqual([
      { utc: '2026-03-29T01:30:00.000Z', local: '2026-03-29T03:30:00+02:00', dst: 'shifted' },
    ]);
  });

  it('"0 */2 * * *" (names even hours) in New York: 00:00 EST, 02:00 shifted to 03:00 EDT, 04:00 EDT', () => {
    expect(locals(fires('0 */2 * * *', NY, '2026-03-08T04:59:00Z', '2026-03-08T09:00:00Z'))).toEqual([
      '2026-03-08T00:00:00-05:00',
      '2026-03-08T03:00:00-04:00',
      '2026-03-08T04:00:00-04:00',
    ]);
  });

  it('seconds: "30 30 2 * * *" in Berlin fires at 03:30:30 CEST', () => {
    expect(fires('30 30 2 * * *', BERLIN, '2026-03-29T00:00:00Z', '2026-03-29T12:00:00Z')).toEqual([
      { utc: '2026-03-29T01:30:30.000Z', local: '2026-03-29T03:30:30+02:00', dst: 'shifted' },
    ]);
  });
});

describe('fixed-time cron in the fall-back repeated hour: fires once, at the first occurrence', () => {
  it('New York "30 1 * * *": 01:30 EDT on 2026-11-01 (marked repeated-once), not 01:30 EST', () => {
    expect(fires('30 1 * * *', NY, '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual([
      { utc: '2026-10-31T05:30:00.000Z', local: '2026-10-31T01:30:00-04:00', dst: null },
      { utc: '2026-11-01T05:30:00.000Z', local: '2026-11-01T01:30:00-04:00', dst: 'repeated-once' },
      { utc: '2026-11-02T06:30:00.000Z', local: '2026-11-02T01:30:00-05:00', dst: null },
    ]);
  });

  it('Berlin "30 2 * * *": 02:30 CEST on 2026-10-25 (marked repeated-once), not 02:30 CET', () => {
    expect(fires('30 2 * * *', BERLIN, '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z')).toEqual([
      { utc: '2026-10-25T00:30:00.000Z', local: '2026-10-25T02:30:00+02:00', dst: 'repeated-once' },
    ]);
  });

  it('"*/15 1 * * *" in New York fires 01:00-01:45 EDT only: four fires, not eight', () => {
    const list = fires('*/15 1 * * *', NY, '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z');
    expect(locals(list)).toEqual([
      '2026-11-01T01:00:00-04:00',
      '2026-11-01T01:15:00-04:00',
      '2026-11-01T01:30:00-04:00',
      '2026-11-01T01:45:00-04:00',
    ]);
    expect(list.every((f) => f.dst === 'repeated-once')).toBe(true);
  });

  it('"0 */2 * * *" in New York: 00:00 EDT, then 02:00 EST three real hours later (wall clock, not elapsed time)', () => {
    expect(locals(fires('0 */2 * * *', NY, '2026-11-01T03:59:00Z', '2026-11-01T09:00:00Z'))).toEqual([
      '2026-11-01T00:00:00-04:00',
      '2026-11-01T02:00:00-05:00',
      '2026-11-01T04:00:00-05:00',
    ]);
  });
});

describe('interval crons follow real elapsed time: no gap, no double', () => {
  it.each([
    [NY, '2026-03-08T07:00:00Z'],
    [NY, '2026-11-01T06:00:00Z'],
    [BERLIN, '2026-03-29T01:00:00Z'],
    [BERLIN, '2026-10-25T01:00:00Z'],
  ])('"*/15 * * * *" in %s around %s: 24 fires in 6 hours, every one 900 s after the last', (zone, change) => {
    const from = new Date(Date.parse(change) - 3 * 3_600_000).toISOString();
    const to = new Date(Date.parse(change) + 3 * 3_600_000).toISOString();
    const list = fires('*/15 * * * *', zone, from, to);
    expect(list).toHaveLength(24);
    expect(new Set(gapsSeconds(list))).toEqual(new Set([900]));
    expect(list.every((f) => f.dst === null)).toBe(true);
  });

  it('spring forward, New York: "*/15 * * * *" goes 01:45 EST -> 03:00 EDT, 15 real minutes', () => {
    expect(locals(fires('*/15 * * * *', NY, '2026-03-08T06:30:00Z', '2026-03-08T07:15:00Z'))).toEqual([
      '2026-03-08T01:45:00-05:00',
      '2026-03-08T03:00:00-04:00',
      '2026-03-08T03:15:00-04:00',
    ]);
  });

  it('fall back, Berlin: "*/15 * * * *" runs through 02:00-02:45 twice, CEST then CET', () => {
    expect(locals(fires('*/15 * * * *', BERLIN, '2026-10-24T23:50:00Z', '2026-10-25T01:15:00Z'))).toEqual([
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:15:00+02:00',
      '2026-10-25T02:30:00+02:00',
      '2026-10-25T02:45:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T02:15:00+01:00',
    ]);
  });

  it('"0 * * * *" fires 23 times on the short day and 25 on the long one, always 3600 s apart (Berlin)', () => {
    const short = fires('0 * * * *', BERLIN, '2026-03-28T22:59:59Z', '2026-03-29T21:59:59Z');
    const long = fires('0 * * * *', BERLIN, '2026-10-24T21:59:59Z', '2026-10-25T22:59:59Z');
    expect([short.length, long.length]).toEqual([23, 25]);
    expect(new Set([...gapsSeconds(short), ...gapsSeconds(long)])).toEqual(new Set([3600]));
  });

  it.each([
    [NY, '2026-03-08T07:00:00Z'],
    [NY, '2026-11-01T06:00:00Z'],
    [BERLIN, '2026-03-29T01:00:00Z'],
    [BERLIN, '2026-10-25T01:00:00Z'],
  ])(
    'seconds: "*/10 * * * * *" in %s around %s fires every 10 real seconds (120 fires in 20 minutes)',
    (zone, change) => {
      const list = fires(
        '*/10 * * * * *',
        zone,
        new Date(Date.parse(change) - 600_000).toISOString(),
        new Date(Date.parse(change) + 600_000).toISOString(),
      );
      expect(list).toHaveLength(120);
      expect(new Set(gapsSeconds(list))).toEqual(new Set([10]));
    },
  );
});

describe('zones without DST: Asia/Kolkata (+05:30) and UTC', () => {
  it('Kolkata "30 2 * * *" fires 365 times in 2026, every one at 02:30+05:30 (21:00Z the day before), 86400 s apart', () => {
    const list = fires('30 2 * * *', KOLKATA, '2025-12-31T18:30:00Z', '2026-12-31T18:30:00Z');
    expect(list).toHaveLength(365);
    expect(
      list.every((f) => f.local.endsWith('T02:30:00+05:30') && f.utc.endsWith('T21:00:00.000Z') && f.dst === null),
    ).toBe(true);
    expect(new Set(gapsSeconds(list))).toEqual(new Set([86400]));
  });

  it('Kolkata "0 * * * *" fires at half past every UTC hour, through the New York and Berlin change dates', () => {
    for (const day of ['2026-03-08', '2026-03-29', '2026-10-25', '2026-11-01']) {
      const list = fires('0 * * * *', KOLKATA, `${day}T00:00:00Z`, `${day}T23:59:59Z`);
      expect(list).toHaveLength(24);
      expect(list.every((f) => f.utc.endsWith(':30:00.000Z') && f.local.endsWith(':00:00+05:30'))).toBe(true);
    }
  });

  it('UTC "30 2 * * *" fires 365 times in 2026 at 02:30Z, and "*/15 * * * *" 96 times on every change date', () => {
    const daily = fires('30 2 * * *', 'UTC', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z');
    expect(daily).toHaveLength(365);
    expect(daily.every((f) => f.utc.endsWith('T02:30:00.000Z') && f.local.endsWith('T02:30:00+00:00'))).toBe(true);
    for (const day of ['2026-03-08', '2026-03-29', '2026-10-25', '2026-11-01']) {
      expect(fires('*/15 * * * *', 'UTC', `${day}T00:00:00Z`, `${day}T23:59:59Z`)).toHaveLength(95); // 00:15 .. 23:45
    }
  });
});

describe('slotsBetween(after, until, limit): the slots s with after < s <= until, ascending, at most limit', () => {
  it('is exclusive of `after` and inclusive of `until`', () => {
    expect(slotsBetween('0 * * * *', 'UTC', at('2026-05-01T10:00:00Z'), at('2026-05-01T13:00:00Z'), 10)).toEqual([
      at('2026-05-01T11:00:00Z'),
      at('2026-05-01T12:00:00Z'),
      at('2026-05-01T13:00:00Z'),
    ]);
  });

  it('stops at `limit`, keeping the earliest', () => {
    expect(slotsBetween('*/5 * * * * *', 'UTC', at('2026-05-01T10:00:00Z'), at('2026-05-01T11:00:00Z'), 3)).toEqual([
      at('2026-05-01T10:00:05Z'),
      at('2026-05-01T10:00:10Z'),
      at('2026-05-01T10:00:15Z'),
    ]);
  });

  it('is empty when no slot is due, when until <= after, and for limit 0', () => {
    expect(slotsBetween('0 * * * *', 'UTC', at('2026-05-01T10:00:00Z'), at('2026-05-01T10:59:59.999Z'), 10)).toEqual(
      [],
    );
    expect(slotsBetween('0 * * * *', 'UTC', at('2026-05-01T12:00:00Z'), at('2026-05-01T10:00:00Z'), 10)).toEqual([]);
    expect(slotsBetween('0 * * * *', 'UTC', at('2026-05-01T10:00:00Z'), at('2026-05-01T12:00:00Z'), 0)).toEqual([]);
  });

  it('a worker down across the New York spring-forward misses 02:30 shifted to 03:30 EDT, and it is listed', () => {
    expect(slotsBetween('30 2 * * *', NY, at('2026-03-07T12:00:00Z'), at('2026-03-08T12:00:00Z'), 10)).toEqual([
      at('2026-03-08T07:30:00Z'),
    ]);
  });

  it('across the Berlin fall-back, "*/30 * * * *" lists both passes of 02:00-02:30 and nothing twice', () => {
    expect(
      slotsBetween('*/30 * * * *', BERLIN, at('2026-10-24T23:45:00Z'), at('2026-10-25T01:45:00Z'), 10).map((d) =>
        localIso(d, BERLIN),
      ),
    ).toEqual([
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:30:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T02:30:00+01:00',
    ]);
  });
});

/**
 * Crons x zones x changes checked against the brute-force statement of the policy in
 * tests/helpers/dst-oracle.ts: the fires and their notes, slotAt at, just after and just before
 * every fire, and slotsBetween over the window. Beyond the four zones of the issue: Sydney
 * (southern hemisphere), Lord Howe (half-hour DST change), Santiago and Havana (change at midnight).
 */
const CHANGES: Record<string, string[]> = {
  [NY]: ['2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z'],
  [BERLIN]: ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z'],
  [KOLKATA]: ['2026-03-08T07:00:00Z'],
  UTC: ['2026-10-25T01:00:00Z'],
  'Australia/Sydney': ['2026-04-04T16:00:00Z', '2026-10-03T16:00:00Z'],
  'Australia/Lord_Howe': ['2026-04-04T15:00:00Z', '2026-10-03T15:30:00Z'],
  'America/Santiago': ['2026-04-05T03:00:00Z', '2026-09-06T04:00:00Z'],
  'America/Havana': ['2026-03-08T05:00:00Z', '2026-11-01T05:00:00Z'],
};
const MINUTE_CRONS = [
  '30 2 * * *',
  '30 1 * * *',
  '0 * * * *',
  '*/15 * * * *',
  '7 * * * *',
  '*/15 2 * * *',
  '*/15 1 * * *',
  '0,30 2 * * *',
  '30 2,3 * * *',
  '0 */2 * * *',
  '0 1-3 * * *',
  '10,50 1,3 * * *',
  '0 0 * * *',
  '30 23 * * *',
  '*/20 0-5 * * 0,6',
];
const SECOND_CRONS = ['30 30 2 * * *', '*/20 59 1 * * *', '0 0 0 * * *'];
const BUSY_CRONS = ['*/20 * * * * *'];

describe.each(Object.entries(CHANGES))('agrees with the policy oracle in %s', (zone, changes) => {
  const cases = changes.flatMap((change) => [
    ...MINUTE_CRONS.map((cron) => ({ cron, change, hours: 30 })),
    ...SECOND_CRONS.map((cron) => ({ cron, change, hours: 30 })),
    ...BUSY_CRONS.map((cron) => ({ cron, change, hours: 1 / 3 })),
  ]);
  it.each(cases)('$cron around $change', ({ cron, change, hours }) => {
    const from = new Date(Date.parse(change) - hours * 3_600_000).toISOString();
    const to = new Date(Date.parse(change) + hours * 3_600_000).toISOString();
    const expected = oracleFires(cron, zone, from, to);
    expect(expected.length).toBeGreaterThan(0);
    expect(fires(cron, zone, from, to).map(({ utc, dst }) => ({ at: utc, dst }))).toEqual(expected);
    expect(slotsBetween(cron, zone, at(from), at(to), 100_000).map((d) => d.toISOString())).toEqual(
      expected.map((f) => f.at),
    );
    const wrong: string[] = [];
    expected.forEach((fire, i) => {
      const t = Date.parse(fire.at);
      const checks: [number, string | undefined][] = [
        [t, fire.at],
        [t + 250, fire.at],
        [t - 1, expected[i - 1]?.at],
      ];
      for (const [probe, want] of checks) {
        if (want && slotAt(cron, zone, new Date(probe)).toISOString() !== want)
          wrong.push(`slotAt(${new Date(probe).toISOString()}) != ${want}`);
      }
    });
    expect(wrong).toEqual([]);
  });
});

/**
 * Crons that fire rarely make the search skip across many DST changes at once (cron.ts skips
 * segments without fires); over 2020-2050 they must still give exactly the oracle's fires.
 */
const RARE_CRONS = [
  '0 0 29 2 *', // every leap day
  '30 2 1 1 *', // once a year
  '0 2 * 3 0', // 02:00 on March Sundays: the New York gap most years, the Berlin gap on the last one
  '30 1 * 10,11 0', // 01:30 on October and November Sundays: the repeated hour some years
  '0 12 13 2 5', // 13 February or any Friday in February: day-of-month OR day-of-week, as in Vixie cron
];

describe.each([NY, BERLIN, 'America/Santiago', 'Australia/Lord_Howe', KOLKATA])(
  'rare crons over 30 years in %s agree with the oracle',
  (zone) => {
    it.each(RARE_CRONS)('%s', (cron) => {
      const [from, to] = ['2020-01-01T00:00:00Z', '2050-01-01T00:00:00Z'];
      const expected = oracleFires(cron, zone, from, to);
      expect(expected.length).toBeGreaterThan(7);
      expect(fires(cron, zone, from, to).map(({ utc, dst }) => ({ at: utc, dst }))).toEqual(expected);
      expect(slotsBetween(cron, zone, at(from), at(to), 100_000).map((d) => d.toISOString())).toEqual(
        expected.map((f) => f.at),
      );
      const wrong = expected.flatMap((fire, i) => {
        const t = Date.parse(fire.at);
        const before = slotAt(cron, zone, new Date(t - 1)).toISOString();
        const exact = slotAt(cron, zone, new Date(t)).toISOString();
        return [
          i > 0 && before !== expected[i - 1]!.at ? `before ${fire.at}: ${before}` : '',
          exact !== fire.at ? `at ${fire.at}: ${exact}` : '',
        ].filter(Boolean);
      });
      expect(wrong).toEqual([]);
    });
  },
);

describe('cron-parser 5.10.6 on its own (why cron.ts walks the wall clock itself)', () => {
  const parse = (cron: string, tz: string, currentDate: string) =>
    CronExpressionParser.parse(cron, { tz, currentDate, strict: false });

  it('chained next() loses shifted times: "0,30 2 * * *" in New York goes from 03:00 EDT straight to the next day', () => {
    const first = parse('0,30 2 * * *', NY, '2026-03-08T05:00:00Z').next();
    expect(first.toISOString()).toBe('2026-03-08T07:00:00.000Z');
    expect(parse('0,30 2 * * *', NY, first.toDate().toISOString()).next().toISOString()).toBe(
      '2026-03-09T06:00:00.000Z',
    );
    // cron.ts: 03:00 and 03:30 EDT.
    expect(nextFire('0,30 2 * * *', NY, at('2026-03-08T07:00:00Z'))).toEqual(at('2026-03-08T07:30:00Z'));
  });

  it('next() gives up at a half-hour fall-back: "0 * * * *" in Lord Howe on 2026-04-05 exceeds its loop limit', () => {
    expect(() => parse('0 * * * *', 'Australia/Lord_Howe', '2026-04-04T14:00:00Z').next()).toThrow(
      /loop limit exceeded/,
    );
    // cron.ts: 01:00 +11 (14:00Z), then 02:00 +10:30 (15:30Z), real time.
    expect(nextFire('0 * * * *', 'Australia/Lord_Howe', at('2026-04-04T14:00:00Z'))).toEqual(
      at('2026-04-04T15:30:00Z'),
    );
  });

  it('prev() does not mirror next(): it skips the shifted 02:30 of 2026-03-08 and takes the second 01:30 of 2026-11-01', () => {
    expect(parse('30 2 * * *', NY, '2026-03-08T12:00:00Z').prev().toISOString()).toBe('2026-03-07T07:30:00.000Z');
    expect(parse('30 1 * * *', NY, '2026-11-01T12:00:00Z').prev().toISOString()).toBe('2026-11-01T06:30:00.000Z');
    // cron.ts: the fires next() makes.
    expect(slotAt('30 2 * * *', NY, at('2026-03-08T12:00:00Z'))).toEqual(at('2026-03-08T07:30:00Z'));
    expect(slotAt('30 1 * * *', NY, at('2026-11-01T12:00:00Z'))).toEqual(at('2026-11-01T05:30:00Z'));
  });
});
