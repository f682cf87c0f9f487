/**
 * Per-batch job states and their counts, for `status`, `run` and the report. BullMQ's own counts are
 * per queue and lose jobs to retention, so each batch keeps a hash jobId → state beside a counts hash,
 * both changed in one Lua script: counts stay exact when a final state is recorded twice (at-least-once
 * delivery) or a failed job is retried and succeeds. A batch is (API, name): each API has its own.
 *
 * The batch also numbers its images (an index given out once, whatever queue the job goes to) and
 * remembers which file each finished job saved, so a copy of the job on another queue finds it.
 */
import type { Redis } from 'ioredis';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { batchIndexKey, batchKeys } from '../redis/keys.js';

export const JOB_STATES = ['pending', 'succeeded', 'filtered', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
const FINAL_STATES = ['succeeded', 'filtered', 'failed', 'cancelled'] as const;

export interface BatchCounts {
  total: number;
  succeeded: number;
  filtered: number;
  failed: number;
  cancelled: number;
  /** total − the final states: waiting, delayed, active or back for a retry. */
  pending: number;
}

export interface JobStateEntry {
  jobId: string;
  state: JobState;
  /** For a succeeded or filtered job: the image it saved, relative to the batch folder. */
  file?: string;
}

export interface BatchState {
  /**
   * Registers jobs about to be added to a queue as pending, whatever state they had: a job is only
   * added again when its image is not on disk. Returns how many were new to the batch.
   */
  addJobs(batch: string, jobIds: string[]): Promise<number>;
  /** Records a job's state (and the image it saved); recording the state it already has changes nothing. */
  setState(batch: string, jobId: string, state: JobState, file?: string): Promise<void>;
  /** Records many states at once (jobs `enqueue` found finished on disk). */
  setStates(batch: string, entries: JobStateEntry[]): Promise<void>;
  counts(batch: string): Promise<BatchCounts>;
  /** Batch names, oldest first. */
  batches(): Promise<string[]>;
  states(batch: string): Promise<Map<string, string>>;
  setMeta(batch: string, meta: Record<string, string>): Promise<void>;
  getMeta(batch: string): Promise<Record<string, string>>;
  /** The image a worker saved for this job, if any (to be checked against the disk). */
  doneFile(batch: string, jobId: string): Promise<string | null>;
  /**
   * Gives out `count` new image indexes, numbered after both the last one given out and `floor`
   * (the highest on disk); returns the first.
   */
  reserveIndexes(batch: string, count: number, floor: number): Promise<number>;
}

/**
 * KEYS: states, counts, index, done. ARGV: batch, then (jobId, state, file or '') triples.
 * Result: how many job ids were new to the batch (see batchSetStates).
 */
const SET_STATES: LuaScript = {
  name: 'nsBatchSetStates',
  numberOfKeys: 4,
  uses: ['nowMs', 'batchSetStates'],
  lua: `return batchSetStates(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV, 2)`,
};

/** KEYS: meta, index. ARGV: batch, then field, value pairs. Result: 1. */
const SET_META: LuaScript = {
  name: 'nsBatchSetMeta',
  numberOfKeys: 2,
  uses: ['nowMs'],
  lua: `
redis.call('ZADD', KEYS[2], 'NX', nowMs(''), ARGV[1])
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1
`,
};

/** KEYS: last index. ARGV: count, floor. Result: the first of `count` new indexes. */
const RESERVE_INDEXES: LuaScript = {
  name: 'nsBatchReserveIndexes',
  numberOfKeys: 1,
  lua: `
local last = tonumber(redis.call('GET', KEYS[1])) or 0
local floor = tonumber(ARGV[2])
if floor > last then last = floor end
redis.call('SET', KEYS[1], last + tonumber(ARGV[1]))
return last + 1
`,
};

/** Jobs per script call: bounds the time one call blocks Redis and the size of its argument list. */
const CHUNK = 2000;

export function createBatchState(opts: { redis: Redis; prefix: string; api: string }): BatchState {
  const { redis, prefix, api } = opts;
  const indexKey = batchIndexKey(prefix, api);
  const keys = (batch: string) => batchKeys(prefix, { api, batch });
  const setStatesScript = loadScript(redis, SET_STATES);
  const setMetaScript = loadScript(redis, SET_META);
  const reserveScript = loadScript(redis, RESERVE_INDEXES);

  async function setStates(batch: string, entries: JobStateEntry[]): Promise<number> {
    for (const e of entries) {
      if (!(JOB_STATES as readonly string[]).includes(e.state)) throw new RangeError(`unknown job state ${e.state}`);
    }
    const k = keys(batch);
    let added = 0;
    // Each entry is recorded idempotently, so splitting the list costs no correctness.
    for (let i = 0; i === 0 || i < entries.length; i += CHUNK) {
      const args = entries.slice(i, i + CHUNK).flatMap((e) => [e.jobId, e.state, e.file ?? '']);
      added += Number(await setStatesScript(k.states, k.counts, indexKey, k.done, batch, ...args));
    }
    return added;
  }

  return {
    addJobs: (batch, jobIds) =>
      setStates(
        batch,
        jobIds.map((jobId) => ({ jobId, state: 'pending' })),
      ),

    async setState(batch, jobId, state, file) {
      await setStates(batch, [{ jobId, state, ...(file !== undefined ? { file } : {}) }]);
    },

    async setStates(batch, entries) {
      await setStates(batch, entries);
    },

    async counts(batch) {
      const raw = await redis.hgetall(keys(batch).counts);
      const n = (field: string) => Number(raw[field] ?? 0);
      const c = { total: n('total'), succeeded: 0, filtered: 0, failed: 0, cancelled: 0, pending: 0 };
      for (const s of FINAL_STATES) c[s] = n(s);
      c.pending = c.total - c.succeeded - c.filtered - c.failed - c.cancelled;
      return c;
    },

    batches: () => redis.zrange(indexKey, 0, -1),

    async states(batch) {
      // HSCAN, not HGETALL: a batch of 100 000 jobs should not block Redis for one huge reply.
      const out = new Map<string, string>();
      let cursor = '0';
      do {
        const [next, flat] = await redis.hscan(keys(batch).states, cursor, 'COUNT', 1000);
        cursor = next;
        for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, flat[i + 1]!);
      } while (cursor !== '0');
      return out;
    },

    async setMeta(batch, meta) {
      await setMetaScript(keys(batch).meta, indexKey, batch, ...Object.entries(meta).flat());
    },

    getMeta: (batch) => redis.hgetall(keys(batch).meta),

    doneFile: (batch, jobId) => redis.hget(keys(batch).done, jobId),

    async reserveIndexes(batch, count, floor) {
      return Number(await reserveScript(keys(batch).lastIndex, count, Math.max(0, Math.floor(floor))));
    },
  };
}
