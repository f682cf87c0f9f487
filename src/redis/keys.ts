/**
 * Every Redis key nightshift uses, and the BullMQ keys it reads, spelled here and nowhere else.
 *
 * Every key starts with the configured prefix, a `{hash tag}` such as `{nightshift}`: Redis Cluster
 * puts all keys sharing a hash tag in one slot, so the scripts that touch several of them at once
 * still work there. Below the prefix:
 *
 * - `<prefix>:<queue>:…`                 BullMQ's own keys (read, never written, by us)
 * - `<prefix>:ns:q:<queue>:…`            per queue: why it is paused, the workers taking its jobs
 * - `<prefix>:ns:api:<api>:…`            per API: its batches, and per batch its states, counts,
 *                                         numbering, finished images, ledger, stashed bytes and
 *                                         in-flight claims. A batch is (API, name): a mock batch and
 *                                         a real batch of the same name share nothing.
 * - `<prefix>:ns:rl:<key id>:…`          the shared rate limit of one API key
 * - `<prefix>:ns:breaker:<api>:<key id>:…` the circuit breaker of one (API, key)
 *
 * On a Redis Cluster one queue's keys (BullMQ's and `ns:q:<queue>:…`) move under a hash tag of
 * their own, `queuePrefix`: `{nightshift-<queue>}`. Each queue then keeps its scripts in one slot
 * and queues spread over the masters. What several queues share (batches, claims, sent marks,
 * stashes, the ledger, the limiter, the breaker) stays under the configured prefix, one slot of
 * its own: no script touches both a queue's keys and the shared ones.
 */
import { createHash } from 'node:crypto';
import { MOCK_API_IDENTITY } from '../config.js';

/** A batch is named within an API: `mock` or the API's normalised host URL. */
export interface BatchRef {
  api: string;
  batch: string;
}

const apiTags = new Map<string, string>();

/**
 * The API as it appears in key names: `mock` as it is, a host URL as a short hash of it (a URL's
 * `:` and `/` would make keys ambiguous, and its length would repeat in every key).
 */
export function apiTag(api: string): string {
  if (api === MOCK_API_IDENTITY) return MOCK_API_IDENTITY;
  // Every key of every job names its API: hash each of the few a process meets once.
  let tag = apiTags.get(api);
  if (tag === undefined) {
    tag = `h${createHash('sha256').update(api).digest('hex').slice(0, 12)}`;
    if (apiTags.size < 64) apiTags.set(api, tag);
  }
  return tag;
}

/**
 * The prefix of one queue's keys, BullMQ's and ours: the configured prefix on one Redis (the layout
 * queues already in Redis were written with), a tag per queue on a cluster.
 */
export function queuePrefix(prefix: string, queue: string, cluster: boolean): string {
  if (!cluster) return prefix;
  const m = /^\{([^{}]+)\}(.*)$/s.exec(prefix);
  return m ? `{${m[1]}-${queue}}${m[2]}` : `{${prefix}-${queue}}`;
}

const ns = (prefix: string) => `${prefix}:ns`;
const apiBase = (prefix: string, api: string) => `${ns(prefix)}:api:${apiTag(api)}`;
const batchBase = (prefix: string, ref: BatchRef) => `${apiBase(prefix, ref.api)}:batch:${ref.batch}`;

/** BullMQ's keys for a queue, as BullMQ spells them: `<prefix>:<queue>:<suffix>` (`prefix`: queuePrefix). */
export const bullKeys = {
  job: (prefix: string, queue: string, jobId: string) => `${prefix}:${queue}:${jobId}`,
  /** Sorted sets of finished job ids, scored by finish time. */
  finished: (prefix: string, queue: string, set: 'completed' | 'failed') => `${prefix}:${queue}:${set}`,
};

/** Our keys of one queue; `prefix` is the queue's own (queuePrefix). */
export function queueKeys(prefix: string, queue: string) {
  const base = `${ns(prefix)}:q:${queue}`;
  return {
    /** Hash: why the queue is paused (reason, message, at). */
    pausedBy: `${base}:paused-by`,
    /** Hash: workerId → JSON of what the worker says about itself. */
    workers: `${base}:workers`,
  };
}

/** Sorted set of an API's batch names, scored by first registration. */
export function batchIndexKey(prefix: string, api: string): string {
  return `${apiBase(prefix, api)}:batches`;
}

/** Keys of one batch. */
export function batchKeys(prefix: string, ref: BatchRef) {
  const base = batchBase(prefix, ref);
  return {
    /** Hash: jobId → state. */
    states: `${base}:states`,
    /** Hash: total and one count per final state. */
    counts: `${base}:counts`,
    /** Hash: queue, created_at, api. */
    meta: `${base}:meta`,
    /** String: the highest image index given out. */
    lastIndex: `${base}:last-index`,
    /** Hash: jobId → the image file (relative to the batch folder) its worker saved. */
    done: `${base}:done`,
    /** Hash: credits billed, possibly billed, reserved, and the budget (micro-credits). */
    ledger: `${base}:ledger`,
  };
}

/** Keys of one job of a batch: shared by every queue holding that job. */
export function jobKeys(prefix: string, ref: BatchRef, jobId: string) {
  const base = `${apiBase(prefix, ref.api)}:job:${ref.batch}:${jobId}`;
  return {
    /** String: the owner sending the job's request now (expires unless renewed). */
    inflight: `${base}:inflight`,
    /** String: a request left and its outcome is not known yet. */
    sent: `${base}:sent`,
    /** Hash: the bytes of a paid image the disk has not taken yet. */
    stash: `${base}:stash`,
  };
}

/** Keys of the shared rate limit of one API key (`keyId`: a hash of the key, never the key). */
export function limiterKeys(prefix: string, keyId: string) {
  const base = `${ns(prefix)}:rl:${keyId}`;
  return {
    /** Sorted set of grant times, and of slots reserved ahead (member: who holds it). */
    grants: `${base}:grants`,
    /** String: when the 429 lockout ends (epoch ms). */
    lockout: `${base}:lockout`,
    /** Sorted set of reserved slot times given back unused, to be taken again first. */
    free: `${base}:free`,
  };
}

/** Keys of the circuit breaker of one (API, key). */
export function breakerKeys(prefix: string, api: string, keyId: string) {
  const base = `${ns(prefix)}:breaker:${apiTag(api)}:${keyId}`;
  return {
    /** String: consecutive transient failures. */
    failures: `${base}:failures`,
    /** String: set while the breaker is open. */
    open: `${base}:open`,
    /** String: the worker allowed to probe the API this interval. */
    probe: `${base}:probe`,
  };
}
