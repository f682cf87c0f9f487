import { createCircuitBreaker } from '../billing/breaker.js';
import { keyLockout } from '../billing/rate-limiter.js';
import type { QueueContext } from './context.js';

/**
 * `nightshift resume`: the queue takes jobs again whatever paused it, the circuit breaker and the
 * 429 lockout of the key its workers use (found by the id they registered) are lifted, and jobs
 * delayed to wait out that lockout run now instead of when it would have ended.
 */
export async function resumeQueue(
  ctx: QueueContext,
  o: { ownKeyId?: string } = {},
): Promise<{ liftedLockoutMs: number }> {
  const workers = await ctx.workers.list();
  const pairs = new Map<string, { api: string; keyId: string }>();
  for (const w of workers) if (w.api && w.key_id) pairs.set(`${w.api}\n${w.key_id}`, { api: w.api, keyId: w.key_id });
  if (o.ownKeyId) pairs.set(`${ctx.api}\n${o.ownKeyId}`, { api: ctx.api, keyId: o.ownKeyId });
  let liftedLockoutMs = 0;
  for (const { api, keyId } of pairs.values()) {
    await createCircuitBreaker({ redis: ctx.redis, prefix: ctx.prefix, api, keyId }).close();
    const lockout = keyLockout(ctx.redis, ctx.prefix, keyId);
    liftedLockoutMs = Math.max(liftedLockoutMs, await lockout.remainingMs());
    await lockout.lift();
  }
  await ctx.control.resume();
  if (liftedLockoutMs > 0) await ctx.queue.promoteJobs();
  return { liftedLockoutMs };
}
