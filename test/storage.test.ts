/** A paid image the disk refuses is kept and written later, never requested again (SPEC §6 `storage`). */
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { tempDir } from './helpers/cli.js';
import { cleanupPrefix, newRedis, randomPrefix } from './helpers/redis.js';
import { pipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';

describe('storage errors', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let p: Pipeline;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [1, 5] });
    p = await pipeline({ prefix, out: tmp.dir, apiUrl: mock.url });
  });
  afterEach(async () => {
    await p.close();
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });
  afterAll(() => redis.disconnect());

  it('keeps the bytes of an image it cannot write (ENOTDIR) and writes them once the obstacle is gone, without a second request', async () => {
    await p.enqueue(['a paid image with nowhere to go']);
    const [job] = await p.ctx.queue.getWaiting();
    // A regular file where the images folder should be: every write under it fails with ENOTDIR.
    const batchDir = join(tmp.dir, 'b');
    await mkdir(batchDir, { recursive: true });
    await writeFile(join(batchDir, 'images'), 'in the way');

    const stashKey = `${prefix}:ns:q:stash:${job!.id}`;
    // A slow backoff: the write is retried a few times while the obstacle is there.
    await p.startWorker({ backoff: '0.5' });
    const end = Date.now() + 20_000;
    while ((await redis.exists(stashKey)) === 0) {
      if (Date.now() > end) throw new Error('the bytes were never stashed');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(mock.stats.generations.size).toBe(1);
    expect((await p.ctx.state.counts('b')).pending).toBe(1);

    await rm(join(batchDir, 'images'));
    const c = await waitForBatch(p);
    expect(c).toMatchObject({ succeeded: 1, failed: 0 });
    expect([...mock.stats.generations.values()]).toEqual([1]);
    expect(mock.stats.total).toBe(1);
    const [rec] = (await readManifest(join(batchDir, 'manifest.jsonl'))).records;
    expect(rec!.status).toBe('succeeded');
    expect((await readFile(join(batchDir, rec!.file!))).length).toBe(rec!.bytes);
    expect(rec!.credits).toBe(3);
    expect(await redis.exists(stashKey)).toBe(0);
    expect((await p.ctx.ledger.get('b')).billed).toBe(3);
  });
});
