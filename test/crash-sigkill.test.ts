import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { buildReport } from '../src/ops/report.js';
import { cliEnv, startCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';

type Child = ReturnType<typeof startCli>;

describe('crash: SIGKILL a worker mid-batch, again and again', () => {
  const t = usePipeline({ latencyMs: [50, 150] });
  const children: Child[] = [];
  // Registered after usePipeline, so it runs first: worker processes die before their keys go.
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
  });

  it('every job ends with one image and one manifest line; only requests in flight at a kill are billed twice', async () => {
    const JOBS = 200;
    const CONCURRENCY = 4;
    const KILLS = 3;
    const out = t.tmp.dir;
    await t.p.enqueue(Array.from({ length: JOBS }, (_, i) => `crash test prompt ${i}, a lighthouse at night`));

    const env = cliEnv({
      NIGHTSHIFT_PREFIX: t.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: t.mock.url,
      STABILITY_API_KEY: 'sk-test',
    });
    const args = [
      'work',
      '--queue',
      'q',
      '--out',
      out,
      '--concurrency',
      String(CONCURRENCY),
      '--rate',
      '1000/1',
      '--lock-duration',
      '1',
      '--stalled-interval',
      '1',
      '--backoff',
      '0.05',
    ];
    const start = () => {
      const c = startCli(args, env);
      children.push(c);
      let log = '';
      c.stdout!.on('data', (d) => (log += d));
      return Object.assign(c, {
        saved: () => log.split('"image saved"').length - 1,
        started: () => log.includes('"worker started"'),
      });
    };

    const t0 = Date.now();
    const survivor = start();
    let victim = start();
    let inFlightAtKills = 0; // at the API, both workers' requests
    await until('the first victim saving images', () => victim.saved() >= 3);
    for (let k = 0; k < KILLS; k++) {
      // A node start takes seconds here (more on a busy machine): hold the queue while the
      // replacement starts, so every kill lands mid-batch however slow the start is. (This is
      // why the workers run without --exit-when-idle: a paused queue would make them exit.)
      await t.p.ctx.queue.pause();
      const next = start();
      await until(`replacement #${k} started`, () => next.started(), 45_000);
      await t.p.ctx.queue.resume();
      const savedBefore = victim.saved();
      await until(`victim #${k} saving more images`, () => victim.saved() > savedBefore);
      inFlightAtKills += t.mock.stats.total - [...t.mock.stats.byStatus.values()].reduce((a, b) => a + b, 0);
      victim.kill('SIGKILL'); // its other requests are in flight now
      const r = await victim.result;
      expect(r.signal).toBe('SIGKILL');
      console.log(
        `[crash-sigkill] kill ${k + 1} at ${Date.now() - t0} ms, ${(await t.p.ctx.state.counts('b')).succeeded} of ${JOBS} done`,
      );
      victim = next;
    }

    const counts = await waitForBatch(t.p, 'b', 45_000);
    console.log(`[crash-sigkill] batch done at ${Date.now() - t0} ms`);
    expect(counts.succeeded).toBe(JOBS);
    expect(counts.failed).toBe(0);
    survivor.kill('SIGTERM');
    victim.kill('SIGTERM');
    const [s, v] = await Promise.all([survivor.result, victim.result]);
    expect(s.code, s.stderr).toBe(130);
    expect(v.code, v.stderr).toBe(130);

    // Before `report`: `work` alone left a line for every job (a job whose line a kill cut off
    // gets it again when it is rerun and found on disk); duplicates are harmless, the last wins.
    const batchDir = join(out, 'b');
    const raw = (await readFile(join(batchDir, 'manifest.jsonl'), 'utf8')).split('\n').filter((l) => l.trim());
    expect((await readManifest(join(batchDir, 'manifest.jsonl'))).records).toHaveLength(JOBS);
    const rep = await buildReport(out, { api: t.p.config.api.identity, batch: 'b' });
    expect(rep.succeeded).toBe(JOBS);

    const text = await readFile(join(batchDir, 'manifest.jsonl'), 'utf8');
    const { records, badLines } = await readManifest(join(batchDir, 'manifest.jsonl'));
    expect(badLines).toBe(0);
    expect(text.trim().split('\n')).toHaveLength(JOBS);
    expect(records).toHaveLength(JOBS);
    expect(new Set(records.map((r) => r.id)).size).toBe(JOBS);
    for (const r of records) expect(r.status).toBe('succeeded');

    const images = (await readdir(join(batchDir, 'images'))).filter((f) => f.endsWith('.png') && !f.startsWith('.'));
    expect(images).toHaveLength(JOBS);
    expect(new Set(records.map((r) => r.file))).toEqual(new Set(images.map((f) => `images/${f}`)));

    const billed = [...t.mock.stats.generations.values()];
    const extra = billed.reduce((a, b) => a + b, 0) - billed.length;
    expect(billed.length).toBe(JOBS);
    // Each kill can lose at most the victim's requests in flight (billed by the API, never answered to us).
    expect(extra).toBeLessThanOrEqual(CONCURRENCY * KILLS);
    // Every request a kill left without an answer is counted as possibly billed, so the ledger never
    // under-reports what the API charged: billed (answers we got) + possibly billed covers it all.
    const ledger = await t.p.ctx.ledger.get('b');
    expect(ledger.billed).toBeGreaterThanOrEqual(JOBS * 3);
    expect(ledger.billed).toBeLessThanOrEqual(t.mock.stats.billedCredits);
    expect(ledger.billed + ledger.maybeBilled).toBeGreaterThanOrEqual(t.mock.stats.billedCredits);
    console.log(
      `[crash-sigkill] ${KILLS} kills: ${extra} extra billed (bound ${CONCURRENCY * KILLS}; ${inFlightAtKills} requests in flight at the API at the kills); raw manifest lines ${raw.length} for ${JOBS} jobs`,
    );
  });
});
