/**
 * One host dies mid-batch: both of its `nightshift work` processes are SIGKILLed. Its jobs are
 * found stalled by the other hosts' workers (short locks) and finished there; only the requests it
 * had out at the kill may be billed twice.
 */
import { describe, expect, inject, it } from 'vitest';
import { BATCH, waitForStatusDone } from './batch-run.js';
import { arrivedFrom, billedFrom, sentWithin, unansweredAt } from './billing.js';
import { expectEveryImageOnce, statusOfGenerations } from './checks.js';
import { flags, useFleet, WORKERS_PER_HOST } from './use-fleet.js';

describe.skipIf(inject('hostsUnsupported') !== null)('many hosts: one host SIGKILLed mid-batch', () => {
  const fleet = useFleet();

  it('the others take its jobs, every image once, only its in-flight requests billed twice', async () => {
    const JOBS = 300;
    const CONCURRENCY = 3;
    const run = await fleet.start({
      tag: 'kill',
      jobs: JOBS,
      mock: { latencyMs: [200, 300] },
      workersPerHost: WORKERS_PER_HOST,
      // Short locks: a dead worker's jobs are found stalled within seconds.
      workerArgs: flags({
        concurrency: CONCURRENCY,
        rate: '1000/1',
        'lock-duration': 2,
        'stalled-interval': 1,
        backoff: 0.05,
        'request-timeout': 30,
      }),
      rate: '1000/1',
    });
    const [victim, ...others] = fleet.net.hosts;
    const t0 = await run.enqueue();
    await run.waitForManifest(JOBS * 0.3, 120_000);
    const killAt = Date.now();
    const killed = await Promise.all(run.workersOn(victim!).map((w) => w.stop('SIGKILL')));
    for (const r of killed) expect(r.signal).toBe('SIGKILL');
    const inFlight = unansweredAt(run.mock.stats.requests, victim!.ip, killAt);
    const doneAtKill = (await run.manifest()).size;
    expect(doneAtKill).toBeLessThan(JOBS);

    await run.waitForManifest(JOBS, 180_000);
    const seconds = (Date.now() - t0) / 1000;
    const status = await waitForStatusDone(run);
    expect(status.batches[BATCH]).toMatchObject({ total: JOBS, succeeded: JOBS, failed: 0, pending: 0 });
    for (const r of await Promise.all(others.flatMap((h) => run.workersOn(h)).map((w) => w.stop('SIGTERM'))))
      expect(r.code, r.stderr).toBe(130);

    const { bill, manifest, images } = await expectEveryImageOnce(run, JOBS);
    const requests = run.mock.stats.requests;
    // The victim took part, then sent nothing more: the rest of the batch was the others'.
    expect(billedFrom(requests, victim!.ip, { to: killAt })).toBeGreaterThan(0);
    expect(arrivedFrom(requests, victim!.ip, { from: killAt + 1 })).toBe(0);
    for (const h of others) expect(billedFrom(requests, h.ip, { from: killAt + 1 })).toBeGreaterThan(0);
    // Its unanswered jobs were recovered from their stalled state by the others.
    expect(inFlight.size).toBeGreaterThan(0);
    expect(statusOfGenerations(manifest, inFlight).filter((s) => s !== 'succeeded')).toEqual([]);
    // Paid twice only for what the victim had sent: at most what its workers can hold at once.
    const sent = sentWithin(requests, victim!.ip, { to: killAt });
    expect(bill.twiceBilled.filter((g) => !sent.has(g))).toEqual([]);
    expect(bill.duplicates).toBeLessThanOrEqual(WORKERS_PER_HOST * CONCURRENCY);
    await fleet.figure({
      run: 'one host SIGKILLed',
      jobs: JOBS,
      images,
      duplicates: bill.duplicates,
      rateLimited: run.mock.stats.rateLimited,
      seconds,
      note: `killed at ${doneAtKill}/${JOBS} done, ${inFlight.size} of its requests unanswered; bound ${WORKERS_PER_HOST * CONCURRENCY}`,
    });
  });
});
