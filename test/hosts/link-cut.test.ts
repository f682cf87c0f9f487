/**
 * One host cut off mid-batch: its link down, then up, as with a pulled cable (packets dropped, no
 * connection reset). With 30 s locks, the in-flight claims outlive a 20 s cut and the few seconds
 * TCP takes to retransmit once the link is back: nobody else sends the cut host's jobs. With short
 * locks they lapse during the cut, and the others may send its in-flight jobs again: billed twice
 * at most, and still one image and one manifest line per job though two hosts finished it.
 */
import { describe, expect, inject, it } from 'vitest';
import { sleep } from '../helpers/wait.js';
import { BATCH, waitForStatusDone, type BatchRun, type BatchRunOptions } from './batch-run.js';
import { arrivedFrom, billedFrom, sentWithin, unansweredAt } from './billing.js';
import { expectEveryImageOnce, statusOfGenerations } from './checks.js';
import { clientsByAddress, commandStats, redisCpuSeconds } from './fleet.js';
import { flags, HOSTS, useFleet, WORKERS_PER_HOST } from './use-fleet.js';

const CONCURRENCY = 2;

const batch = (tag: string, o: { jobs: number; lockSeconds: number }): BatchRunOptions => ({
  tag,
  jobs: o.jobs,
  // Slow enough that the batch outlasts the cut, with work left for the host when it is back.
  mock: { latencyMs: [1000, 1500] },
  workersPerHost: WORKERS_PER_HOST,
  workerArgs: flags({
    concurrency: CONCURRENCY,
    rate: '1000/1',
    'lock-duration': o.lockSeconds,
    'stalled-interval': 1,
    backoff: 0.05,
    'request-timeout': 120,
  }),
  rate: '1000/1',
});

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe.skipIf(inject('hostsUnsupported') !== null)('many hosts: one host cut off', () => {
  const fleet = useFleet();

  /** Runs the batch to the end with every host connected; notes what Redis did per job. */
  async function baseline(jobs: number): Promise<number> {
    const run = await fleet.start(batch('base', { jobs, lockSeconds: 30 }));
    const redis = fleet.redis.client;
    await redis.config('RESETSTAT');
    await sleep(5000);
    const idlePerWorkerPerS = sum(await commandStats(redis)) / (HOSTS * WORKERS_PER_HOST) / 5;
    await redis.config('RESETSTAT');
    const cpu0 = await redisCpuSeconds(redis);
    const t0 = await run.enqueue();
    await run.waitForManifest(jobs / 2, 180_000);
    const clients = await clientsByAddress(redis);
    await run.waitForManifest(jobs, 180_000);
    const seconds = (Date.now() - t0) / 1000;
    const cmds = await commandStats(redis);
    const cpu = (await redisCpuSeconds(redis)) - cpu0;
    await waitForStatusDone(run);
    for (const r of await run.stopAll()) expect(r.code, r.stderr).toBe(130);
    const { bill, images } = await expectEveryImageOnce(run, jobs);
    expect(bill.duplicates).toBe(0);
    await run.close();
    await fleet.figure({ run: 'no host cut off', jobs, images, duplicates: 0, rateLimited: 0, seconds });
    const perHost = fleet.net.hosts.map((h) => clients.get(h.ip) ?? 0);
    const top = [...cmds].sort((a, b) => b[1] - a[1]).slice(0, 6);
    await fleet.note(
      `Redis, limit not binding (${HOSTS * WORKERS_PER_HOST * CONCURRENCY} jobs in flight): ` +
        `CPU ${((100 * cpu) / seconds).toFixed(0)}% of a core, ${(sum(cmds) / seconds).toFixed(0)} commands/s, ` +
        `${(sum(cmds) / jobs).toFixed(1)} commands per job ` +
        `(${top.map(([c, n]) => `${c} ${(n / jobs).toFixed(1)}`).join(', ')}); ` +
        `${idlePerWorkerPerS.toFixed(1)} commands/s per idle worker; ` +
        `connections per host ${perHost.join('/')}, ${(perHost[0]! / WORKERS_PER_HOST).toFixed(1)} per worker`,
    );
    return seconds;
  }

  /** Cuts the second host once `share` of the batch is done, for `cutMs`; runs the batch to the end. */
  async function cutOff(run: BatchRun, o: { jobs: number; share: number; cutMs: number }) {
    const { jobs, cutMs } = o;
    const [, cutHost, ...rest] = fleet.net.hosts;
    const t0 = await run.enqueue();
    await run.waitForManifest(jobs * o.share, 180_000);
    await fleet.net.cut(cutHost!);
    const cutAt = Date.now();
    const inFlight = unansweredAt(run.mock.stats.requests, cutHost!.ip, cutAt);
    const doneAtCut = (await run.manifest()).size;
    // `status` answers from the host side while a host is gone.
    expect((await run.status()).batches[BATCH]!.total).toBe(jobs);
    await sleep(cutMs - (Date.now() - cutAt));
    const doneAtUp = (await run.manifest()).size;
    await fleet.net.restore(cutHost!);
    const upAt = Date.now();

    await run.waitForManifest(jobs, 180_000);
    const seconds = (Date.now() - t0) / 1000;
    const status = await waitForStatusDone(run);
    expect(status.batches[BATCH]).toMatchObject({ total: jobs, succeeded: jobs, failed: 0, pending: 0 });
    for (const r of await run.stopAll()) expect(r.code, r.stderr).toBe(130);

    const result = await expectEveryImageOnce(run, jobs);
    const requests = run.mock.stats.requests;
    // The cut was real: nothing from the cut host reached the API while its link was down
    // (a second of slack for requests already received but not yet handled)...
    expect(arrivedFrom(requests, cutHost!.ip, { from: cutAt + 1000, to: upAt })).toBe(0);
    // ...while the others went on.
    const others = [fleet.net.hosts[0]!, ...rest];
    for (const h of others) expect(billedFrom(requests, h.ip, { from: cutAt + 1000, to: upAt })).toBeGreaterThan(0);
    expect(doneAtUp).toBeGreaterThan(doneAtCut);
    // Its in-flight jobs were not lost.
    expect(inFlight.size).toBeGreaterThan(0);
    expect(statusOfGenerations(result.manifest, inFlight).filter((s) => s !== 'succeeded')).toEqual([]);
    const after = [...sentWithin(requests, cutHost!.ip, { from: upAt })].filter((g) => !inFlight.has(g));
    const back = requests.find((r) => r.remote === cutHost!.ip && r.arrival > upAt);
    const byOthers = new Set(others.flatMap((h) => [...sentWithin(requests, h.ip, {})]));
    const resent = [...inFlight].filter((g) => byOthers.has(g));
    const note =
      `cut at ${doneAtCut}/${jobs} done with ${inFlight.size} of its requests unanswered, ${resent.length} of them ` +
      `sent again by the others, ${doneAtUp} done when it came back` +
      (back
        ? `, its first request ${((back.arrival - upAt) / 1000).toFixed(1)} s after, ${after.length} new jobs`
        : '');
    return {
      ...result,
      inFlight,
      after,
      doneAtUp,
      seconds,
      note,
      sentBeforeCut: sentWithin(requests, cutHost!.ip, { to: cutAt }),
    };
  }

  it('20 s, its claims outliving the cut: the others go on, its in-flight jobs neither lost nor sent twice, it rejoins', async () => {
    const JOBS = 300;
    const CUT_MS = 20_000;
    const baseSeconds = await baseline(JOBS);
    const run = await fleet.start(batch('cut', { jobs: JOBS, lockSeconds: 30 }));
    const r = await cutOff(run, { jobs: JOBS, share: 0.15, cutMs: CUT_MS });
    // Back, it took new jobs: more than its workers could have held when the link went down.
    expect(r.doneAtUp).toBeLessThan(JOBS);
    expect(r.after.length).toBeGreaterThan(WORKERS_PER_HOST * CONCURRENCY);
    expect([...r.inFlight].filter((g) => r.bill.perGeneration.get(g) !== 1)).toEqual([]);
    expect(r.bill.duplicates).toBe(0);
    await fleet.figure({
      run: 'one host cut off 20 s',
      jobs: JOBS,
      images: r.images,
      duplicates: r.bill.duplicates,
      rateLimited: run.mock.stats.rateLimited,
      seconds: r.seconds,
      note: `vs ${baseSeconds.toFixed(1)} s with none; ${r.note}`,
    });
  });

  it('20 s with 2 s locks, its claims lapsing: the others may send its jobs again, billed twice at most, one image each', async () => {
    // Cut late, so the others drain the queue and come to the cut host's jobs (put back behind the
    // waiting ones) before it is back: then two hosts finish the same jobs.
    const JOBS = 150;
    const run = await fleet.start(batch('lapse', { jobs: JOBS, lockSeconds: 2 }));
    const r = await cutOff(run, { jobs: JOBS, share: 0.5, cutMs: 20_000 });
    // Only what the cut host had sent can have been paid twice, at most what its workers hold at once.
    expect(r.bill.twiceBilled.filter((g) => !r.sentBeforeCut.has(g))).toEqual([]);
    expect(r.bill.duplicates).toBeLessThanOrEqual(WORKERS_PER_HOST * CONCURRENCY);
    await fleet.figure({
      run: 'one host cut off 20 s, claims lapsed',
      jobs: JOBS,
      images: r.images,
      duplicates: r.bill.duplicates,
      rateLimited: run.mock.stats.rateLimited,
      seconds: r.seconds,
      note: r.note,
    });
  });
});
