import { createHash } from 'node:crypto';
import { type JobDoc, WRITABLE_FIELDS } from '../models/cron-job.model.js';

/** What a job's version is made of: its id, what an owner can write, and when it was last written. */
export type Versioned = Pick<JobDoc, '_id' | 'updatedAt' | (typeof WRITABLE_FIELDS)[number]>;

/**
 * A strong ETag (RFC 9110 section 8.8.3) for the writable state of a job. Runs do not change it
 * (they do not touch what an owner writes), so an If-Match taken before a run still matches
 * after it; every accepted edit changes it.
 */
export function jobEtag(job: Versioned): string {
  const state = [String(job._id), job.updatedAt.toISOString(), ...WRITABLE_FIELDS.map((field) => job[field])];
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
