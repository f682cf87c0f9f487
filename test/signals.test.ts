import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { cliEnv, startCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';

describe('signals: SIGTERM finishes in-flight work, a second signal exits at once', () => {
  const t = usePipeline({ latencyMs: 500 });
  const children: Array<ReturnType<typeof startCli>> = [];
  // Registered after usePipeline, so it runs first: worker processes die before their keys go.
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
  });

  const JOBS = 24;
  const answered = () => [...t.mock.stats.byStatus.values()].reduce((a, b) => a + b, 0);
  const inFlight = () => t.mock.stats.total - answered();

  function work(extra: string[] = []) {
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: t.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: t.mock.url,
      STABILITY_API_KEY: 'sk-test',
    });
    const c = startCli(
      [
        'work',
        '--queue',
        'q',
        '--out',
        t.tmp.dir,
        '--concurrency',
        '4',
        '--rate',
        '1000/1',
        '--lock-duration',
        '1',
        '--stalled-interval',
        '1',
        '--backoff',
        '0.05',
        ...extra,
      ],
      env,
    );
    children.push(c);
    let log = '';
    c.stdout!.on('data', (d) => (log += d));
    return Object.assign(c, { log: () => log });
  }

  async function finishWithSecondWorker() {
    const rest = work(['--exit-when-idle']);
    const r = await rest.result;
    expect(r.code, r.stderr).toBe(0);
    const counts = await waitForBatch(t.p, 'b', 5_000);
    expect(counts.succeeded).toBe(JOBS);
    const { records } = await readManifest(join(t.tmp.dir, 'b', 'manifest.jsonl'));
    expect(records.filter((x) => x.status === 'succeeded')).toHaveLength(JOBS);
  }

  it('SIGTERM: in-flight requests finish and are recorded, exit 130; a later worker does the rest, nothing billed twice', async () => {
    await t.p.enqueue(Array.from({ length: JOBS }, (_, i) => `signal prompt ${i}, an owl`));
    const w = work(['--grace', '20']);
    await until(
      'the worker mid-batch with requests in flight',
      () => w.log().includes('"image saved"') && inFlight() > 0,
    );
    w.kill('SIGTERM');
    const inFlightAtSignal = inFlight();
    const r = await w.result;
    expect(r.code, r.stderr).toBe(130);
    expect(r.signal).toBe(null);
    expect(w.log()).toContain('"signal":"SIGTERM"');
    // Within the grace period: nothing had to be abandoned.
    expect(w.log()).not.toContain('did not finish within the grace period');
    expect(inFlight()).toBe(0);

    // Every request the API answered (and billed) before the exit has its image and its manifest line.
    const billedBeforeExit = t.mock.stats.generations.size;
    expect(billedBeforeExit).toBeLessThan(JOBS);
    const { records } = await readManifest(join(t.tmp.dir, 'b', 'manifest.jsonl'));
    expect(records).toHaveLength(billedBeforeExit);
    const images = (await readdir(join(t.tmp.dir, 'b', 'images'))).filter(
      (f) => f.endsWith('.png') && !f.startsWith('.'),
    );
    expect(images).toHaveLength(billedBeforeExit);
    expect((await t.p.ctx.state.counts('b')).succeeded).toBe(billedBeforeExit);

    await finishWithSecondWorker();
    expect(t.mock.stats.generations.size).toBe(JOBS);
    for (const n of t.mock.stats.generations.values()) expect(n).toBe(1);
    console.log(
      `[signals] SIGTERM with ${inFlightAtSignal} requests in flight: all finished and recorded, none billed twice`,
    );
  });

  it('a second signal exits at once, without waiting for the requests in flight', async () => {
    await t.p.enqueue(Array.from({ length: JOBS }, (_, i) => `second signal prompt ${i}, a fox`));
    // Requests that would take far longer than this test: only an immediate exit can end the worker.
    t.mock.setFault(() => ({ kind: 'delay', ms: 60_000 }));
    const w = work(['--grace', '60']);
    await until('4 requests in flight', () => inFlight() >= 4);
    w.kill('SIGTERM');
    await until('the first signal logged', () => w.log().includes('"signal":"SIGTERM"'));
    w.kill('SIGINT');
    const r = await w.result;
    expect(r.code, r.stderr).toBe(130);
    expect(w.log()).toContain('exiting now');
    expect(answered()).toBe(0);

    // The interrupted jobs come back (after the in-flight claim lapses) and the batch completes.
    t.mock.setFault(undefined);
    await finishWithSecondWorker();
  });
});
