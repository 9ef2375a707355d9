/**
 * Group commit: items handed in while writes are in flight go together in the next one, so a
 * burst costs a few round trips rather than one per item, and a lone item waits for nobody
 * (only for the current turn of the event loop, which gathers what arrives with it). Up to
 * `parallel` writes go at once, so a database that runs a write's statements one by one still
 * has work on every core. Each caller's promise settles with its own item's result, or with the
 * batch's error.
 */
export function groupCommit<T, R>(
  write: (items: T[]) => Promise<R[]>,
  { maxBatch = 500, parallel = 1 }: { maxBatch?: number; parallel?: number } = {},
): (item: T) => Promise<R> {
  let pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  let writing = 0;
  let scheduled = false;

  const flush = async () => {
    writing++;
    try {
      while (pending.length) {
        const batch = pending.slice(0, maxBatch);
        pending = pending.slice(batch.length);
        try {
          const results = await write(batch.map((entry) => entry.item));
          for (const [i, entry] of batch.entries()) entry.resolve(results[i]!);
        } catch (error) {
          for (const entry of batch) entry.reject(error);
        }
      }
    } finally {
      writing--;
    }
  };

  return (item) =>
    new Promise<R>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      if (writing < parallel && !scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          if (pending.length && writing < parallel) void flush();
        });
      }
    });
}
