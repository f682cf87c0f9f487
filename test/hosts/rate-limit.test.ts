/**
 * The shared rate limit across hosts: six worker processes on three hosts, one limit in Redis,
 * against a fake that enforces the API's strict sliding window (scaled down from 150/10 s with a
 * 60 s lockout to 50/5 s with a 5 s lockout). A single request over the limit would be a 429.
 */
import { describe, expect, inject, it } from 'vitest';
import { BATCH, waitForStatusDone } from './batch-run.js';
import { billedFrom } from './billing.js';
import { expectEveryImageOnce } from './checks.js';
import { commandStats, redisCpuSeconds } from './fleet.js';
import { flags, HOSTS, useFleet, WORKERS_PER_HOST } from './use-fleet.js';

const COUNT = 50;
const WINDOW_MS = 5000;
const CONCURRENCY = 16;

describe.skipIf(inject('hostsUnsupported') !== null)('many hosts: the shared rate limit', () => {
  const fleet = useFleet();

  it(`${HOSTS} hosts × ${WORKERS_PER_HOST} workers finish a batch at ${COUNT}/${WINDOW_MS / 1000} s without a single 429`, async () => {
    const JOBS = 200;
    const rate = `${COUNT}/${WINDOW_MS / 1000}`;
    const run = await fleet.start({
      tag: 'rate',
      jobs: JOBS,
      mock: { latencyMs: [200, 300], rateLimit: { count: COUNT, windowMs: WINDOW_MS, lockoutMs: 5000 } },
      workersPerHost: WORKERS_PER_HOST,
      // Together the workers could send far more than the limit at once: only the limit holds them.
      // --lockout matches the fake's, so a 429 shows as a failed assertion rather than a long stall.
      workerArgs: flags({ concurrency: CONCURRENCY, rate, lockout: 5, 'lock-duration': 10, 'stalled-interval': 2 }),
      rate,
    });
    await fleet.redis.client.config('RESETSTAT');
    const cpu0 = await redisCpuSeconds(fleet.redis.client);
    const t0 = await run.enqueue();
    await run.waitForManifest(JOBS, 180_000);
    const seconds = (Date.now() - t0) / 1000;
    const cmds = await commandStats(fleet.redis.client);
    const cpu = (await redisCpuSeconds(fleet.redis.client)) - cpu0;
    const status = await waitForStatusDone(run);
    expect(status.batches[BATCH]).toMatchObject({ total: JOBS, succeeded: JOBS, failed: 0, pending: 0 });
    for (const r of await run.stopAll()) expect(r.code, r.stderr).toBe(130);

    const { stats } = run.mock;
    expect(stats.rateLimited).toBe(0);
    expect(stats.byStatus.get(429) ?? 0).toBe(0);
    const busiest = stats.maxInWindow(WINDOW_MS);
    expect(busiest).toBeLessThanOrEqual(COUNT);
    // The limit was the bottleneck, and it was used: nearly a full window's worth arrived in some window.
    expect(busiest).toBeGreaterThanOrEqual(COUNT * 0.9);
    const { bill, images } = await expectEveryImageOnce(run, JOBS);
    expect(bill.duplicates).toBe(0);
    const perHost = fleet.net.hosts.map((h) => billedFrom(stats.requests, h.ip));
    for (const n of perHost) expect(n).toBeGreaterThan(0);
    await fleet.figure({
      run: `rate limit ${rate} across ${HOSTS} hosts`,
      jobs: JOBS,
      images,
      duplicates: bill.duplicates,
      rateLimited: stats.rateLimited,
      seconds,
      note: `busiest ${WINDOW_MS / 1000} s window ${busiest}/${COUNT}; images per host ${perHost.join('/')}`,
    });
    const total = [...cmds.values()].reduce((a, b) => a + b, 0);
    await fleet.note(
      `Redis with the limit binding (${HOSTS * WORKERS_PER_HOST * CONCURRENCY} jobs in flight for ${COUNT} per window): ` +
        `Redis CPU ${((100 * cpu) / seconds).toFixed(0)}% of a core, ${(total / seconds).toFixed(0)} commands/s, ` +
        `${(total / JOBS).toFixed(1)} commands per job (` +
        [...cmds]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([c, n]) => `${c} ${(n / JOBS).toFixed(1)}`)
          .join(', ') +
        ')',
    );
  });
});
