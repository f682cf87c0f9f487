/** A paid image the disk refuses is kept and written later, never requested again (`storage`). */
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { jobKeys } from '../src/redis/keys.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';

describe('storage errors', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it('keeps the bytes of an image it cannot write (ENOTDIR) and writes them once the obstacle is gone, without a second request', async () => {
    await t.p.enqueue(['a paid image with nowhere to go']);
    const [job] = await t.p.ctx.queue.getWaiting();
    // A regular file where the images folder should be: every write under it fails with ENOTDIR.
    const batchDir = join(t.tmp.dir, 'b');
    await mkdir(batchDir, { recursive: true });
    await writeFile(join(batchDir, 'images'), 'in the way');

    const stashKey = jobKeys(t.prefix, { api: t.p.config.api.identity, batch: 'b' }, job!.id!).stash;
    // A slow backoff: the write is retried a few times while the obstacle is there.
    await t.p.startWorker({ backoff: '0.5' });
    const end = Date.now() + 20_000;
    while ((await t.redis.exists(stashKey)) === 0) {
      if (Date.now() > end) throw new Error('the bytes were never stashed');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(t.mock.stats.generations.size).toBe(1);
    expect((await t.p.ctx.state.counts('b')).pending).toBe(1);

    await rm(join(batchDir, 'images'));
    const c = await waitForBatch(t.p);
    expect(c).toMatchObject({ succeeded: 1, failed: 0 });
    expect([...t.mock.stats.generations.values()]).toEqual([1]);
    expect(t.mock.stats.total).toBe(1);
    const [rec] = (await readManifest(join(batchDir, 'manifest.jsonl'))).records;
    expect(rec!.status).toBe('succeeded');
    expect((await readFile(join(batchDir, rec!.file!))).length).toBe(rec!.bytes);
    expect(rec!.credits).toBe(3);
    expect(await t.redis.exists(stashKey)).toBe(0);
    expect((await t.p.ctx.ledger.get('b')).billed).toBe(3);
  });
});
