import { createHash } from 'node:crypto';

/** What a job's version is made of: its id, what an owner can write, and when it was last written. */
export interface Versioned {
  _id: unknown;
  updatedAt: Date;
  name: string;
  type: string;
  cron: string;
  timezone: string;
  payload: unknown;
  enabled: boolean;
  overlap: string;
  misfirePolicy: string;
}

/**
 * A strong ETag (RFC 9110 section 8.8.3) for the writable state of a job. Runs do not change it
 * (they do not touch what an owner writes), so an If-Match taken before a run still matches
 * after it; every accepted edit changes it.
 */
export function jobEtag(job: Versioned): string {
  const state = [
    String(job._id),
    job.updatedAt.toISOString(),
    job.name,
    job.type,
    job.cron,
    job.timezone,
    job.payload,
    job.enabled,
    job.overlap,
    job.misfirePolicy,
  ];
  return `"${createHash('sha256').update(JSON.stringify(state)).digest('base64url').slice(0, 22)}"`;
}

/**
 * Whether an If-Match header lets a write to a resource with `etag` go ahead (RFC 9110 section
 * 13.1.1): `*` matches any existing resource, otherwise one of the listed entity tags must equal
 * it by strong comparison, so a weak tag (W/"...") never matches. A value that lists no entity
 * tag matches nothing.
 */
export function ifMatchSatisfied(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const tags = header.match(/(?:W\/)?"[^"]*"/g) ?? [];
  return tags.some((tag) => tag === etag);
}
