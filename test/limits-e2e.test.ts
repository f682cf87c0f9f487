/**
 * The shared rate limit across worker PROCESSES against a fake that enforces the API's strict sliding
 * window (scaled down from 150/10 s with a 60 s lockout to 50/5 s with a 2 s lockout, so it runs in seconds).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMockApi } from '../src/mock-api/server.js';
import { maxInWindow } from '../src/mock-api/stats.js';
import { apiKeyId } from '../src/billing/rate-limiter.js';
import { limiterKeys } from '../src/redis/keys.js';
import { cliEnv, runCli, startCli, type CliResult } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { useProcessFixture } from './helpers/process-fixture.js';

const KEY = 'sk-limits-test';

/** Lines of pino JSON a worker printed with this message. */
function logged(r: CliResult, msg: string): number {
  return r.stdout.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

describe('rate limit across worker processes', () => {
  const fx = useProcessFixture();
  const { redis } = fx;

  async function enqueue(env: NodeJS.ProcessEnv, n: number, rate: string) {
    const file = join(fx.tmp.dir, 'limits.txt');
    await writeFile(file, Array.from({ length: n }, (_, i) => `limits prompt ${i}, a lighthouse at dusk`).join('\n'));
    const r = await runCli(['enqueue', file, '--queue', 'q', '--batch', 'b', '--rate', rate], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`added ${n}`);
  }

  /**
   * Every grant the shared limiter makes, on Redis' clock: its sorted set keeps each one for a window
   * after its time (and slots booked ahead before it), so reading it twice a window misses none.
   */
  function watchGrants() {
    const seen = new Map<string, number>();
    const key = limiterKeys(fx.prefix, apiKeyId(KEY)).grants;
    const read = async () => {
      const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
      for (let i = 0; i + 1 < flat.length; i += 2) seen.set(flat[i]!, Number(flat[i + 1]));
    };
    const timer = setInterval(() => void read().catch(() => {}), 500);
    return {
      async stop(): Promise<number[]> {
        clearInterval(timer);
        await read();
        return [...seen.values()].sort((a, b) => a - b);
      },
    };
  }

  function workers(env: NodeJS.ProcessEnv, n: number, flags: string[]) {
    return Array.from({ length: n }, () =>
      startCli(['work', '--exit-when-idle', '--queue', 'q', '--out', join(fx.tmp.dir, 'out'), ...flags], env),
    );
  }

  it('two worker processes finish 120 jobs at 50/5 s without a single 429', async () => {
    fx.mock = await startMockApi({ latencyMs: [100, 300], rateLimit: { count: 50, windowMs: 5000, lockoutMs: 2000 } });
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: fx.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: fx.mock.url,
      STABILITY_API_KEY: KEY,
    });
    await enqueue(env, 120, '50/5');
    // --lockout matches the fake's, so a 429 shows up as a failed assertion rather than a 60 s stall.
    const grants = watchGrants();
    const procs = workers(env, 2, ['--concurrency', '64', '--rate', '50/5', '--lockout', '2']);
    const results = await Promise.all(procs.map((p) => p.result));
    const granted = await grants.stop();
    for (const r of results) expect(r.code, r.stderr).toBe(0);

    expect(fx.mock.stats.rateLimited).toBe(0);
    expect(fx.mock.stats.maxInWindow(5000)).toBeLessThanOrEqual(50);
    // The limit was the bottleneck, and it was used: the limiter granted a full window's worth in
    // some window. Its own grant times say so; arrivals at the fake add this machine's delays (a
    // loaded machine spreads them), which is what the margin absorbs, not what the limiter decided.
    expect(granted.length).toBeGreaterThanOrEqual(120);
    expect(maxInWindow(granted, 5000)).toBeGreaterThanOrEqual(45);
    expect(maxInWindow(granted, 5000)).toBeLessThanOrEqual(50);
    expect(fx.mock.stats.generations.size).toBe(120);
    for (const n of fx.mock.stats.generations.values()) expect(n).toBe(1);
    // 120 generations + the balance check: every request counted against the same window.
    expect(fx.mock.stats.total).toBe(121);
    // Every process took part (concurrency 64 each: neither could take all 120 at once).
    expect(results.map((r) => logged(r, 'image saved')).reduce((a, b) => a + b, 0)).toBe(120);
    expect(results.filter((r) => logged(r, 'image saved') > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('one 429 with Retry-After makes every worker process wait out the lockout', async () => {
    const latency = 50;
    fx.mock = await startMockApi({ latencyMs: latency });
    let generations = 0;
    let lockedAt: number | null = null;
    fx.mock.setFault(({ model }) => {
      if (!model) return undefined; // the balance check
      generations++;
      if (generations !== 15) return undefined;
      lockedAt = Date.now();
      return { status: 429, retryAfterSec: 2 };
    });
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: fx.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: fx.mock.url,
      STABILITY_API_KEY: KEY,
    });
    await enqueue(env, 60, '1000/1');
    // A generous limit of our own, so only the fake's 429 can hold the workers back.
    const procs = workers(env, 3, ['--concurrency', '4', '--rate', '1000/1', '--rate-margin', '0', '--lockout', '30']);
    const results = await Promise.all(procs.map((p) => p.result));
    for (const r of results) expect(r.code, r.stderr).toBe(0);

    expect(lockedAt).not.toBeNull();
    const t429 = lockedAt!;
    // The 429 is answered `latency` ms after it arrived; requests granted before the workers heard of it
    // are already on the wire and arrive just after. Nothing else may arrive until Retry-After (2 s) ends.
    // Slots are checked against the lockout right before sending; the slack covers the last hop
    // (socket write to the fake's handler) on a 2-core machine running other test files at once.
    const slack = 500;
    const during = fx.mock.stats.arrivals.filter(
      (t) => t > t429 + latency + slack && t < t429 + latency + 2000 - slack,
    );
    expect(during).toEqual([]);
    // Arrivals resume after the lockout (with Retry-After honoured, not --lockout's 30 s).
    const after = fx.mock.stats.arrivals.filter((t) => t >= t429 + 2000);
    expect(after.length).toBeGreaterThan(0);
    expect(Math.min(...after)).toBeLessThan(t429 + 2000 + 3000);
    expect(fx.mock.stats.byStatus.get(429)).toBe(1);
    expect(fx.mock.stats.generations.size).toBe(60);
    // At least two processes were sending when the 429 came, and all of them held off.
    const busy = results.filter((r) => logged(r, 'image saved') > 0).length;
    expect(busy).toBeGreaterThanOrEqual(2);
    expect(results.some((r) => logged(r, 'rate limited by the API: every worker on this key pauses') === 1)).toBe(true);
  });
});
