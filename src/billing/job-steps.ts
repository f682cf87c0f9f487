import type { Redis } from 'ioredis';
import { loadScript } from '../redis/scripts.js';
import { batchIndexKey, batchKeys, jobKeys } from '../redis/keys.js';
import type { JobState } from '../queue/batch-state.js';
import type { JobRef } from './inflight.js';
import { fromMicro, toMicro } from './ledger.js';
import type { RateLimiter, Slot } from './rate-limiter.js';
import { BEGIN, FINISH, SETTLE_SENT } from './job-scripts.js';

/**
 * A paid job's Redis work in two round trips: `begin` before the request (claim, budget reservation,
 * sent mark, rate slot) and `finish` once its image is recorded (ledger, claim, batch state).
 */
export interface JobSteps {
  begin(job: JobRef, o: BeginOptions): Promise<Begun>;
  /** 'held': a reused image whose claim another owner still holds; nothing was recorded. */
  finish(job: JobRef, o: FinishOptions): Promise<Finished>;
  /**
   * A request whose record did not complete: booked as what it was (answered: billed; a timeout:
   * possibly billed; refused before it left: not billed) and its claim dropped, once.
   */
  closeSent(job: JobRef, o: { owner: string; credits: number; outcome: SentOutcome }): Promise<void>;
}

export interface BeginOptions {
  owner: string;
  credits: number;
  /** The job's own file name: a done record naming it tells nothing the disk did not. */
  ownFile: string;
  /** Claim even though the done record names a file (the disk no longer has it). */
  passDone?: boolean;
}

export type Begun =
  | { kind: 'done'; file: string }
  | { kind: 'stashed' }
  | { kind: 'held'; remainingMs: number }
  | { kind: 'budget'; orphan: boolean; budget: number; committed: number }
  | { kind: 'go'; orphan: boolean; slot: Slot };

export type Finished = { kind: 'finished' } | { kind: 'held'; remainingMs: number };

export type SentOutcome = 'billed' | 'maybe_billed' | 'unbilled';

export interface FinishOptions {
  credits: number;
  /** 'paid': this owner's request was answered; 'reused': the image was already on disk. */
  mode: 'paid' | 'reused';
  owner: string;
  state: JobState;
  file?: string;
}

/** A sent mark outlives any request; it goes once the outcome is known. */
const SENT_TTL_S = 7 * 24 * 3600;

export function createJobSteps(opts: {
  redis: Redis;
  prefix: string;
  api: string;
  claimTtlMs: number;
  limiter: Pick<RateLimiter, 'slotRequest'>;
}): JobSteps {
  const { redis, prefix, api } = opts;
  const beginScript = loadScript(redis, BEGIN);
  const finishScript = loadScript(redis, FINISH);
  const settleScript = loadScript(redis, SETTLE_SENT);
  const keysOf = (job: JobRef) => ({
    job: jobKeys(prefix, { api, batch: job.batch }, job.id),
    batch: batchKeys(prefix, { api, batch: job.batch }),
  });
  return {
    async begin(job, o) {
      const k = keysOf(job);
      const slot = opts.limiter.slotRequest();
      const raw = (await beginScript(
        ...[k.job.inflight, k.job.sent, k.batch.done, k.job.stash, k.batch.ledger, ...slot.keys],
        ...[o.owner, opts.claimTtlMs, job.id, o.ownFile, o.passDone ? '1' : '', toMicro(o.credits), SENT_TTL_S],
        ...slot.args,
      )) as (string | number)[];
      return begun(raw, slot.parse);
    },
    async finish(job, o) {
      const k = keysOf(job);
      const raw = await finishScript(
        ...[k.batch.ledger, k.job.inflight, k.job.sent, k.batch.states, k.batch.counts],
        ...[batchIndexKey(prefix, api), k.batch.done, toMicro(o.credits), o.mode, o.owner],
        ...[job.batch, job.id, o.state, o.file ?? ''],
      );
      if (Array.isArray(raw) && raw[0] === 'held') return { kind: 'held', remainingMs: Math.max(0, Number(raw[1])) };
      return { kind: 'finished' };
    },
    async closeSent(job, o) {
      const k = keysOf(job);
      await settleScript(k.batch.ledger, k.job.inflight, k.job.sent, toMicro(o.credits), o.owner, o.outcome);
    },
  };
}

/** The begin script's answer as a value. */
function begun(raw: (string | number)[], parseSlot: (raw: unknown) => Slot): Begun {
  const [what, ...rest] = raw;
  if (what === 'done') return { kind: 'done', file: String(rest[0]) };
  if (what === 'stashed') return { kind: 'stashed' };
  if (what === 'held') return { kind: 'held', remainingMs: Math.max(0, Number(rest[0])) };
  if (what === 'budget') {
    const [outcome, budget, committed] = rest;
    return {
      kind: 'budget',
      orphan: outcome === 'orphan',
      budget: fromMicro(Number(budget)),
      committed: fromMicro(Number(committed)),
    };
  }
  return { kind: 'go', orphan: what === 'orphan', slot: parseSlot(rest) };
}
