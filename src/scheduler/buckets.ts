/**
 * Every cron job belongs to one of BUCKETS buckets, fixed at creation from its id (bucketOf),
 * and partition p of P owns a contiguous range of buckets (bucketRange). Changing the number
 * of partitions moves no document: only the ranges change.
 */
export const BUCKETS = 1024;

/** A job's bucket: the low bits of its id's counter, so consecutive jobs spread over every bucket. */
export const bucketOf = (id: { toHexString(): string } | string) =>
  Number.parseInt((typeof id === 'string' ? id : id.toHexString()).slice(-6), 16) % BUCKETS;

/** The buckets [from, to) of partition `p` of `count`. */
export function bucketRange(p: number, count: number): [number, number] {
  return [Math.floor((p * BUCKETS) / count), Math.floor(((p + 1) * BUCKETS) / count)];
}

/** The bucket ranges of some partitions, adjacent ones merged: what a tick's query asks for. */
export function bucketRanges(partitions: number[], count: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (const p of [...partitions].sort((a, b) => a - b)) {
    const [from, to] = bucketRange(p, count);
    const last = ranges[ranges.length - 1];
    if (last && last[1] === from) last[1] = to;
    else ranges.push([from, to]);
  }
  return ranges;
}
