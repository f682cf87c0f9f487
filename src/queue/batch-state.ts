/**
 * Per-batch job states and their counts, for `status`, `run` and the report. BullMQ's own counts are
 * per queue and lose jobs to retention, so each batch keeps a hash jobId → state beside a counts hash,
 * both changed in one Lua script: counts stay exact when a final state is recorded twice (at-least-once
 * delivery) or a failed job is retried and succeeds.
 */
import type { Redis } from 'ioredis';
import { script } from '../redis/scripts.js';

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

export interface BatchState {
  /** Registers jobs as pending; ids already known keep their state. Returns how many were new. */
  addJobs(batch: string, jobIds: string[]): Promise<number>;
  /** Records a job's state; recording the state it already has changes nothing. */
  setState(batch: string, jobId: string, state: JobState): Promise<void>;
  counts(batch: string): Promise<BatchCounts>;
  /** Batch names, oldest first. */
  batches(): Promise<string[]>;
  states(batch: string): Promise<Map<string, string>>;
  setMeta(batch: string, meta: Record<string, string>): Promise<void>;
  getMeta(batch: string): Promise<Record<string, string>>;
}

// Registers the batch in the index (first registration time, from Redis so all machines agree).
const REGISTER_LUA = `
local t = redis.call('TIME')
redis.call('ZADD', KEYS[3], 'NX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
`;

// KEYS: states, counts, index. ARGV: batch, jobId... -> newly registered
const ADD_JOBS_LUA = `${REGISTER_LUA}
local added = 0
for i = 2, #ARGV do
  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], 'pending')
end
if added > 0 then redis.call('HINCRBY', KEYS[2], 'total', added) end
return added
`;

// KEYS: states, counts, index. ARGV: batch, jobId, state -> 1 changed | 0 unchanged
// counts holds total and one field per final state; pending is derived, so it needs no field.
const SET_STATE_LUA = `
local old = redis.call('HGET', KEYS[1], ARGV[2])
local new = ARGV[3]
if old == new then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], new)
if not old then
  ${REGISTER_LUA}
  redis.call('HINCRBY', KEYS[2], 'total', 1)
elseif old ~= 'pending' then
  redis.call('HINCRBY', KEYS[2], old, -1)
end
if new ~= 'pending' then redis.call('HINCRBY', KEYS[2], new, 1) end
return 1
`;

// KEYS: meta, unused, index. ARGV: batch, field, value, ...
const SET_META_LUA = `${REGISTER_LUA}
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1
`;

/** Ids per script call: bounds the time one call blocks Redis and the size of its argument list. */
const CHUNK = 2000;

export function createBatchState(opts: { redis: Redis; prefix: string }): BatchState {
  const { redis, prefix } = opts;
  const indexKey = `${prefix}:ns:batches`;
  const keys = (batch: string) => {
    const base = `${prefix}:ns:batch:${batch}`;
    return { states: `${base}:states`, counts: `${base}:counts`, meta: `${base}:meta` };
  };
  const addJobsScript = script(redis, 'nsBatchAddJobs', 3, ADD_JOBS_LUA);
  const setStateScript = script(redis, 'nsBatchSetState', 3, SET_STATE_LUA);
  const setMetaScript = script(redis, 'nsBatchSetMeta', 3, SET_META_LUA);

  return {
    async addJobs(batch, jobIds) {
      const k = keys(batch);
      let added = 0;
      // Each id is registered idempotently, so splitting the list costs no correctness.
      for (let i = 0; i === 0 || i < jobIds.length; i += CHUNK) {
        added += Number(await addJobsScript(k.states, k.counts, indexKey, batch, ...jobIds.slice(i, i + CHUNK)));
      }
      return added;
    },

    async setState(batch, jobId, state) {
      if (!(JOB_STATES as readonly string[]).includes(state)) throw new RangeError(`unknown job state ${state}`);
      const k = keys(batch);
      await setStateScript(k.states, k.counts, indexKey, batch, jobId, state);
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
      const k = keys(batch);
      await setMetaScript(k.meta, k.counts, indexKey, batch, ...Object.entries(meta).flat());
    },

    getMeta: (batch) => redis.hgetall(keys(batch).meta),
  };
}
