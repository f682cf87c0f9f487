/**
 * What `enqueue` asks the API before it adds a batch, with a key: whether it serves the v1 engines
 * the batch uses, and whether the balance covers the estimate. Each answer that refuses the key or
 * cannot be had maps to the exit code a person acts on.
 */
import { ApiError, EnvironmentError, StoppedError } from '../errors.js';
import type { PlanPass } from './plan-pass.js';
import { refuseUnlistedEngines, v1EnginesOf } from './engines.js';
import type { EnqueueSummary } from './enqueue-summary.js';

/** Present when a key is set. Each call is a request: it takes a slot of the shared rate limit. */
export interface ApiChecks {
  /** The account's balance: checked before paying for anything. */
  getBalance?: () => Promise<number>;
  /** The v1 engines the API serves. */
  listEngines?: () => Promise<string[]>;
}

interface ApiCheckContext {
  plan: Pick<PlanPass, 'v1Jobs' | 'v1Lines'>;
  /** The jobs about to be added (numbers in the plan). */
  fresh: number[];
  summary: EnqueueSummary;
  force: boolean;
}

/** With a key: the v1 engines the batch uses must be listed, and the balance must cover the estimate. */
export async function checkWithApi(deps: ApiChecks, c: ApiCheckContext): Promise<void> {
  const engines = v1EnginesOf(c.plan.v1Jobs, c.fresh);
  if (engines.size > 0 && deps.listEngines) {
    refuseUnlistedEngines(c.plan.v1Lines, engines, await askApi(deps.listEngines, 'listing the engines'));
  }
  if (!deps.getBalance) return;
  c.summary.balance = await askApi(deps.getBalance, 'checking the balance');
  if (c.summary.estimatedCredits > c.summary.balance && !c.force) {
    throw new StoppedError(
      'balance',
      `the batch needs about ${c.summary.estimatedCredits} credits but the account has ${c.summary.balance}; buy credits, shrink the batch, or pass --force`,
    );
  }
}

async function askApi<T>(call: () => Promise<T>, what: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiError && (err.errorClass === 'auth' || err.errorClass === 'payment')) {
      throw new StoppedError(err.errorClass, `the API refused the key while ${what} (${err.status}): ${err.message}`);
    }
    if (err instanceof ApiError && err.status === null) {
      throw new EnvironmentError(`the API host is unreachable: ${err.message}`, { cause: err });
    }
    // A 5xx, a 429, an answer that is not one: the API cannot tell now. A 4xx: this API (a proxy,
    // say) does not answer the check at all. Either way nothing was added yet.
    if (err instanceof ApiError) {
      const passing = err.errorClass === 'transient' || err.errorClass === 'rate_limited';
      const then = passing ? 'nothing was enqueued, try again' : 'nothing was enqueued; check STABILITY_API_HOST';
      throw new EnvironmentError(
        `the API could not answer while ${what} (HTTP ${err.status}): ${err.message}; ${then}`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}
