/**
 * Many hosts, for real: three network namespaces on a bridge stand for three machines, each running
 * two `nightshift work` processes against one Redis reachable only over their links, with the fake
 * API on the host end of the bridge. Mid-batch, one host's workers are SIGKILLed, or its link is
 * cut for 20 s; and the shared rate limit is held against a strict sliding-window fake.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/wait.js';
import { startBatchRun, waitForStatusDone, BATCH, type BatchRun, type Fleet } from './batch-run.js';
import { arrivedFrom, billedFrom, sentBefore, unansweredAt } from './billing.js';
import { expectEveryImageOnce, statusOfGenerations } from './checks.js';
import { createFigures } from './figures.js';
import { clientsByAddress, commandStats, startBridgeRedis } from './fleet.js';
import { createNetwork, whyUnsupported } from './netns.js';

const unsupported = await whyUnsupported();
if (unsupported) console.warn(`[hosts] skipped: ${unsupported}`);

const HOSTS = 3;
const WORKERS_PER_HOST = 2;
const CUT_MS = 20_000;

const flags = (o: Record<string, string | number>) => Object.entries(o).flatMap(([k, v]) => [`--${k}`, String(v)]);

describe.skipIf(unsupported !== null)('many hosts: three namespaces, one Redis over their links', () => {
  let fleet: Fleet | undefined;
  const runs: BatchRun[] = [];
  const figures = createFigures();
  const net = () => fleet!.net;

  beforeAll(async () => {
    const network = await createNetwork({ hosts: HOSTS });
    try {
      fleet = { net: network, redis: await startBridgeRedis(network.bridgeIp) };
    } catch (err) {
      await network.destroy();
      throw err;
    }
  });
  afterEach(async () => {
    // A failed test may leave a link down: every test starts with all hosts connected.
    for (const h of fleet?.net.hosts ?? []) await fleet!.net.restore(h).catch(() => {});
    for (const r of runs.splice(0)) await r.close();
  });
  afterAll(async () => {
    console.log(figures.table());
    await fleet?.redis.stop();
    await fleet?.net.destroy();
  });

  const start = async (o: Parameters<typeof startBatchRun>[1]) => {
    const run = await startBatchRun(fleet!, o);
    runs.push(run);
    return run;
  };

  it('one host SIGKILLed mid-batch: the others take its jobs, every image once, only its in-flight requests billed twice', async () => {
    const JOBS = 300;
    const CONCURRENCY = 3;
    const run = await start({
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
    const [victim, ...others] = net().hosts;
    const t0 = await run.enqueue();
    await run.waitForManifest(JOBS * 0.3, 120_000);
    const killAt = Date.now();
    const inFlight = unansweredAt(run.mock.stats.requests, victim!.ip, killAt);
    const killed = await Promise.all(run.workersOn(victim!).map((w) => w.stop('SIGKILL')));
    for (const r of killed) expect(r.signal).toBe('SIGKILL');
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
    expect(statusOfGenerations(manifest, inFlight).filter((s) => s !== 'succeeded')).toEqual([]);
    // Paid twice only for what the victim had sent: at most what its workers can hold at once.
    const sent = sentBefore(requests, victim!.ip, killAt);
    expect(bill.twiceBilled.filter((g) => !sent.has(g))).toEqual([]);
    expect(bill.duplicates).toBeLessThanOrEqual(WORKERS_PER_HOST * CONCURRENCY);
    figures.add({
      run: 'one host SIGKILLed',
      jobs: JOBS,
      images,
      duplicates: bill.duplicates,
      rateLimited: run.mock.stats.rateLimited,
      seconds,
      note: `killed at ${doneAtKill}/${JOBS} done with ${inFlight.size} requests unanswered; bound ${WORKERS_PER_HOST * CONCURRENCY}`,
    });
  }, 300_000);
});
