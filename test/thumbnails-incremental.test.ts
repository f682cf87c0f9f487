/**
 * Thumbnails made by the worker as each image is written: the gallery's previews exist while the
 * batch is still running, and a thumbnail that cannot be made never fails or repeats a paid job.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { buildReport } from '../src/ops/report.js';
import { thumbPathFor } from '../src/output/thumbnails.js';
import { createThumbnailQueue, loopBusy } from '../src/output/thumbnail-queue.js';
import { silent, usePipeline, waitForBatch } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';
import { exists } from './helpers/temp.js';

describe('thumbnails during the run', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it("makes an image's thumbnail as soon as it is written, while the batch is still running", async () => {
    // One request never answers, so the batch cannot end while the test looks.
    t.mock.setFault(({ prompt }) => (prompt === 'never answered' ? { kind: 'hang' } : undefined));
    await t.p.enqueue(['answered at once', 'never answered']);
    const file = (await t.p.ctx.queue.getWaiting()).find((j) => j.data.prompt === 'answered at once')!.data.file;
    // A short grace: the request that never answers is abandoned when the test ends.
    await t.p.startWorker({ grace: '0.2' });
    const dir = join(t.tmp.dir, 'b');
    const state = () => t.p.ctx.state.counts('b');
    await until('the first image', async () => (await state()).succeeded === 1);
    const thumb = join(dir, thumbPathFor(file)!);
    await until('its thumbnail', () => exists(thumb));

    expect((await state()).pending).toBe(1);
    const meta = await sharp(await readFile(thumb)).metadata();
    expect(meta.format).toBe('webp');
  });

  it('does not fail or repeat a job whose thumbnail cannot be made; the report makes it later', async () => {
    const dir = join(t.tmp.dir, 'b');
    await t.p.enqueue(['thumbnail refused one', 'thumbnail refused two']);
    // A file where the thumbnails folder goes: every thumbnail write fails.
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'thumbs'), 'not a folder');
    const w = await t.p.startWorker();
    const counts = await waitForBatch(t.p);
    // Stopped, so no thumbnail still queued in the worker is made after the folder is fixed.
    await w.stop(0);

    expect(counts).toMatchObject({ total: 2, succeeded: 2, failed: 0 });
    expect(t.mock.stats.total).toBe(2);
    expect(await exists(join(dir, 'thumbs'))).toBe(true);
    // The folder made right again, the report makes what the run could not.
    await rm(join(dir, 'thumbs'));
    const report = await buildReport(t.tmp.dir, { api: t.p.config.api.identity, batch: 'b' });
    expect(report).toMatchObject({ succeeded: 2, thumbnails: { made: 2, upToDate: 0, failed: 0 } });
  });
});

describe('the thumbnail queue', () => {
  it('logs a failure, even one thrown at once, and goes on with the next image', async () => {
    const made: string[] = [];
    const q = createThumbnailQueue({
      logger: silent,
      make: (_dir, file) => {
        if (file === 'images/bad.png') throw new Error('cannot decode');
        made.push(file);
        return Promise.resolve();
      },
    });
    q.add('/nowhere', 'images/bad.png');
    q.add('/nowhere', 'images/good.png');
    await q.idle();
    expect(made).toEqual(['images/good.png']);
    await q.stop();
  });

  it('leaves what does not fit to the report instead of queueing without bound', async () => {
    const made: string[] = [];
    const q = createThumbnailQueue({ logger: silent, maxPending: 2, make: async (_d, f) => void made.push(f) });
    for (const f of ['a', 'b', 'c', 'd']) q.add('/nowhere', `images/${f}.png`);
    await q.idle();
    expect(made).toEqual(['images/a.png', 'images/b.png']);
    await q.stop();
  });
});

describe('thumbnails wait while the worker is busy', () => {
  it('makes none while busy and catches up once the worker has time again', async () => {
    vi.useFakeTimers();
    try {
      const made: string[] = [];
      let busy = true;
      const q = createThumbnailQueue({
        logger: silent,
        busy: () => busy,
        recheckMs: 200,
        make: async (_d, f) => void made.push(f),
      });
      q.add('/nowhere', 'images/a.png');
      q.add('/nowhere', 'images/b.png');
      await vi.advanceTimersByTimeAsync(1000);
      expect(made).toEqual([]);
      busy = false;
      await vi.advanceTimersByTimeAsync(200);
      await q.idle();
      expect(made).toEqual(['images/a.png', 'images/b.png']);
      await q.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('drops what is waiting when stopped, leaving it to the report, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    try {
      const made: string[] = [];
      const q = createThumbnailQueue({ logger: silent, busy: () => true, make: async (_d, f) => void made.push(f) });
      q.add('/nowhere', 'images/a.png');
      await vi.advanceTimersByTimeAsync(50); // it looked, found the worker busy, and will look again
      expect(vi.getTimerCount()).toBe(1);
      await q.stop();
      expect(vi.getTimerCount()).toBe(0);
      await q.idle();
      expect(made).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('calls an event loop busy when it spent most of the last window working', async () => {
    const busy = loopBusy({ windowMs: 100 });
    const spinUntil = Date.now() + 150;
    while (Date.now() < spinUntil); // the loop does nothing else meanwhile
    expect(busy()).toBe(true);
    await new Promise((r) => setTimeout(r, 150));
    expect(busy()).toBe(false);
  });
});
