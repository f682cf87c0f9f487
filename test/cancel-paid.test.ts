import { mkdir, readdir, readFile, rmdir, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cancelBatch } from '../src/ops/cancel-retry.js';
import { readManifest } from '../src/output/manifest.js';
import { jobKeys } from '../src/redis/keys.js';
import { defaultJobOptions, JOB_NAME } from '../src/queue/queue.js';
import { usePipeline, waitForBatch } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';
import { exists } from './helpers/temp.js';

const sidecarOf = (file: string) => file.replace(/\.png$/, '.json');

describe('cancel never loses or hides a paid image', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it('a job whose paid bytes wait in Redis for the disk stays, and is written once the disk lets it', async () => {
    await t.p.enqueue(['a paid image the disk refuses']);
    const [job] = await t.p.ctx.queue.getWaiting();
    const batchDir = join(t.tmp.dir, 'b');
    // A folder where the image goes: the write fails (EISDIR) after the API answered.
    await mkdir(join(batchDir, job!.data.file), { recursive: true });
    const stashKey = jobKeys(t.prefix, { api: t.p.config.api.identity, batch: 'b' }, job!.id!).stash;
    await t.p.startWorker({ backoff: '0.5' });
    await until('stashed', async () => (await t.redis.exists(stashKey)) === 1);
    await until('delayed', async () => (await t.p.ctx.queue.getDelayedCount()) === 1);

    expect(await cancelBatch(t.p.ctx, t.p.config, 'b')).toMatchObject({ cancelled: 0, finished: 0, kept: 1 });
    await rmdir(join(batchDir, job!.data.file));
    const sidecar = join(batchDir, sidecarOf(job!.data.file));
    await until('written', async () => (await exists(sidecar)) && (await t.p.ctx.state.counts('b')).succeeded === 1);

    expect(JSON.parse(await readFile(sidecar, 'utf8'))).toMatchObject({ status: 'succeeded', credits: 3 });
    expect((await stat(join(batchDir, job!.data.file))).isFile()).toBe(true);
    expect(t.mock.stats.total).toBe(1);
    expect(await t.redis.exists(stashKey)).toBe(0);
  });

  it('a job back in the queue whose image is already saved keeps its record, and a rerun pays nothing', async () => {
    await t.p.enqueue(['a finished image']);
    const w = await t.p.startWorker();
    await waitForBatch(t.p);
    await w.stop(0);
    const [job] = await t.p.ctx.queue.getCompleted();
    const sidecar = join(t.tmp.dir, 'b', sidecarOf(job!.data.file));
    // Delivered again: its worker died after the write, before the queue heard it finished.
    await job!.remove();
    await t.p.ctx.queue.add(JOB_NAME, job!.data, { ...defaultJobOptions(), jobId: job!.id! });

    expect(await cancelBatch(t.p.ctx, t.p.config, 'b')).toMatchObject({ cancelled: 0, finished: 1, kept: 0 });
    expect(JSON.parse(await readFile(sidecar, 'utf8'))).toMatchObject({ status: 'succeeded', file: job!.data.file });
    const { records } = await readManifest(join(t.tmp.dir, 'b', 'manifest.jsonl'));
    expect(records.map((r) => r.status)).toEqual(['succeeded']);
    expect(await t.p.ctx.state.counts('b')).toMatchObject({ succeeded: 1, cancelled: 0 });

    expect(await t.p.enqueue(['a finished image'])).toMatchObject({ added: 0, onDisk: 1 });
    expect([...t.mock.stats.generations.values()]).toEqual([1]);
  });

  it('a waiting job with nothing saved is cancelled and recorded so', async () => {
    await t.p.enqueue(['never sent']);
    expect(await cancelBatch(t.p.ctx, t.p.config, 'b')).toMatchObject({
      cancelled: 1,
      finished: 0,
      kept: 0,
      unrecorded: { count: 0 },
    });
    expect(await t.p.ctx.state.counts('b')).toMatchObject({ cancelled: 1, pending: 0 });
    expect(t.mock.stats.total).toBe(0);
  });

  it('a batch folder swapped for a link under a worker: no request, and the job ends failed, not pending for ever', async () => {
    await t.p.enqueue(['an image with a hostile folder']);
    const elsewhere = join(t.tmp.dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(t.tmp.dir, 'b'));
    await t.p.startWorker({ backoff: '0.01' });
    await until('the job ended', async () => (await t.p.ctx.state.counts('b')).pending === 0);
    expect(await t.p.ctx.state.counts('b')).toMatchObject({ failed: 1, pending: 0 });
    expect(t.mock.stats.total).toBe(0);
    expect(await readdir(elsewhere)).toEqual([]);
  });
});
