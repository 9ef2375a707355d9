/**
 * The JSON Schema `pattern` the spec publishes for cron fields, so that tools that know nothing
 * of cron (Schemathesis, form validators) send only crons the service accepts. Built from the
 * field ranges and month lengths of cron-parser, the library the service validates with.
 *
 * It matches a subset of the accepted crons, chosen so that every match is accepted under the
 * default rules (five fields; fires at least the given interval apart): five fields separated by
 * single spaces, each `*`, `*\/n`, an ascending range `a-b` or `a-b/n`, or an ascending list of
 * numbers (one number included), numbers written without leading zeros. A day of month of 30 or
 * 31 comes with a month that has it. Left out, though accepted: names (`MON-FRI`), `L`, `?`,
 * lists holding ranges or steps, unordered lists, a seconds field where the service allows it.
 * cron-parser refuses a list naming a value twice (`5,1-10`, weekday `0,7`); ascending lists of
 * plain numbers never do, which is why lists stop there.
 */
import { CronDayOfMonth, CronDayOfWeek, CronHour, CronMinute, CronMonth } from 'cron-parser';

interface Field {
  min: number;
  max: number;
  /** The values one list may name together; several sets where two values are the same (weekday 0 and 7). */
  lists: number[][];
}

const span = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const group = (alternatives: string[]) =>
  alternatives.length === 1 ? alternatives[0]! : `(?:${alternatives.join('|')})`;
const digit = (from: number, to: number) =>
  from === to ? `${from}` : to === from + 1 ? `[${from}${to}]` : `[${from}-${to}]`;

const field = ({ min, max }: { min: number; max: number }, lists = [span(min, max)]): Field => ({ min, max, lists });
const MINUTE = field(CronMinute.constraints);
const HOUR = field(CronHour.constraints);
const DAY = field(CronDayOfMonth.constraints);
const MONTH = field(CronMonth.constraints);
// 0 and 7 are both Sunday: a list names one of them.
const WEEKDAY = field(CronDayOfWeek.constraints, [span(0, 6), span(1, 7)]);
/** Days in each month, February with 29 (cron-parser's table). */
const MONTH_DAYS = CronMonth.daysInMonth;

/** The integers from..to (0-99) as written without leading zeros, e.g. 7-31: `[7-9]|[12][0-9]|3[01]`. */
export function integers(from: number, to: number): string {
  const alternatives: string[] = [];
  if (from <= 9) alternatives.push(digit(from, Math.min(to, 9)));
  // Two digits, by tens digit; tens digits whose units run 0-9 share one alternative.
  const full: number[] = [];
  const flush = () => {
    if (full.length) alternatives.push(`${digit(full[0]!, full[full.length - 1]!)}[0-9]`);
    full.length = 0;
  };
  for (let tens = Math.max(1, Math.floor(from / 10)); tens <= Math.floor(to / 10); tens++) {
    const low = Math.max(from, tens * 10) % 10;
    const high = Math.min(to, tens * 10 + 9) % 10;
    if (low === 0 && high === 9) full.push(tens);
    else {
      flush();
      alternatives.push(`${tens}${digit(low, high)}`);
    }
  }
  flush();
  return group(alternatives);
}

/**
 * Ascending lists of the values (one value included): `a`, `a,b` with a < b, and so on. Nested
 * rather than enumerated: lists from the i-th value on are that value alone, or optionally that
 * value and a comma followed by a list from the next value on. Linear in the number of values.
 */
function ascendingLists(values: number[]): string {
  let lists = `${values[values.length - 1]}`;
  for (const value of values.slice(0, -1).reverse()) lists = `(?:${value}|(?:${value},)?${lists})`;
  return lists;
}

/**
 * The expressions of one field whose smallest value lies in `first` (all of them by default) and,
 * with `includes`, that name at least one value it holds for.
 */
function fieldPattern(f: Field, first: [number, number] = [f.min, f.max], includes = (_: number) => true): string {
  const step = `(?:/${integers(1, f.max)})?`;
  const [lowest, highest] = first;
  const alternatives: string[] = [];
  // `*` and `*/n` name the field's first value.
  if (f.min >= lowest && f.min <= highest && includes(f.min)) alternatives.push(`\\*${step}`);
  const stepped: string[] = [];
  const plain: string[] = [];
  for (const from of span(lowest, highest)) {
    // A range from a value that does not qualify must reach one that does, and a step could skip it.
    const to = span(from, f.max).find(includes);
    if (to === from) stepped.push(`${from}-${integers(from, f.max)}`);
    else if (to !== undefined) plain.push(`${from}-${integers(to, f.max)}`);
  }
  if (stepped.length) alternatives.push(`${group(stepped)}${step}`);
  alternatives.push(...plain);
  // Lists of qualifying values; one starting in `first` may go on past it.
  for (const values of f.lists) {
    const listed = values.filter(includes);
    const head = listed.filter((v) => v >= lowest && v <= highest);
    const tail = listed.filter((v) => v > highest);
    if (head.length) alternatives.push(ascendingLists(head) + tail.map((v) => `(?:,${v})?`).join(''));
  }
  return group(alternatives);
}

/**
 * Day of month and month together: cron-parser refuses a day of month whose smallest day no month
 * named has (31 February, 31 April), so the days are split by the month lengths they need
 * (1-29: any month; 30: any but February; 31: a 31-day month) and each comes with the months
 * that have it.
 */
function dayAndMonth(): string {
  const lengths = [...new Set(MONTH_DAYS)].sort((a, b) => a - b);
  return group(
    lengths.map((length, i) => {
      const from = i === 0 ? DAY.min : lengths[i - 1]! + 1;
      const months = fieldPattern(MONTH, [MONTH.min, MONTH.max], (month) => MONTH_DAYS[month - 1]! >= length);
      return `${fieldPattern(DAY, [from, length])} ${months}`;
    }),
  );
}

/**
 * The pattern for crons of five fields whose fires are at least `minIntervalSeconds` apart: up to
 * 60 s every field takes every form (five fields never fire closer than a minute); up to an hour
 * the minute is one number; up to a day the hour is one number too.
 */
export function cronPattern(minIntervalSeconds: number): string {
  if (minIntervalSeconds > 24 * 3600) throw new Error(`no cron pattern for fires ${minIntervalSeconds} s apart`);
  const one = (f: Field) => integers(f.min, f.max);
  const minute = minIntervalSeconds <= 60 ? fieldPattern(MINUTE) : one(MINUTE);
  const hour = minIntervalSeconds <= 3600 ? fieldPattern(HOUR) : one(HOUR);
  return `^${minute} ${hour} ${dayAndMonth()} ${fieldPattern(WEEKDAY)}$`;
}
