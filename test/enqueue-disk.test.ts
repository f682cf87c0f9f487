/**
 * How `enqueue` reads the batch folder: one listing, then only the sidecars whose name ends with a job's
 * 8 hex digits, trusted only when they carry that job's full id and their image is intact.
 */
import { readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBatchState } from '../src/queue/batch-state.js';
import { usePipeline, waitForBatch, type PipelineFixture } from './helpers/pipeline.js';

const sidecars = async (t: PipelineFixture) =>
  (await readdir(join(t.tmp.dir, 'b', 'images'))).filter((f) => f.endsWith('.json')).sort();

/** The same prompts enqueued again after a wiped Redis: no queue, no batch state, only the disk. */
async function rerunFresh(t: PipelineFixture, lines: string[]) {
  await t.p.ctx.queue.obliterate({ force: true });
  for (const k of await t.redis.keys(`${t.prefix}:ns:*`)) await t.redis.del(k);
  return t.p.enqueue(lines);
}

describe('enqueue and the batch folder', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it('counts finished images as on disk, in the batch state too, and re-enqueues a truncated one under its name', async () => {
    const lines = ['disk one', 'disk two', 'disk three'];
    await t.p.enqueue(lines);
    const w = await t.p.startWorker();
    await waitForBatch(t.p);
    await w.stop(0);
    const [first] = await sidecars(t);
    const record = JSON.parse(await readFile(join(t.tmp.dir, 'b', 'images', first!), 'utf8'));
    await truncate(join(t.tmp.dir, 'b', record.file), 10);

    const s = await rerunFresh(t, lines);
    expect(s).toMatchObject({ added: 1, present: 0, onDisk: 2 });
    const state = createBatchState({ redis: t.redis, prefix: t.prefix, api: t.p.config.api.identity });
    expect(await state.counts('b')).toMatchObject({ total: 3, succeeded: 2, pending: 1 });
    // The truncated one runs again under its own name: its new image replaces the damaged one.
    const [job] = await t.p.ctx.queue.getWaiting();
    expect(job!.data.prompt).toBe(record.prompt);
    expect(job!.data.file).toBe(record.file);
  });

  it("does not take another job's sidecar for this one's, though their names end with the same 8 digits", async () => {
    await t.p.enqueue(['collision one']);
    const w = await t.p.startWorker();
    await waitForBatch(t.p);
    await w.stop(0);
    const [name] = await sidecars(t);
    const path = join(t.tmp.dir, 'b', 'images', name!);
    const record = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...record, id: `${record.id}-someone-else` }));

    const s = await rerunFresh(t, ['collision one']);
    expect(s).toMatchObject({ added: 1, onDisk: 0 });
  });

  it('keeps the file name of a job whose sidecar says it failed', async () => {
    t.mock.setFault(({ prompt }) => (prompt === 'fails once' ? { status: 422, name: 'bad_request' } : undefined));
    await t.p.enqueue(['fine', 'fails once']);
    const w = await t.p.startWorker();
    expect(await waitForBatch(t.p)).toMatchObject({ succeeded: 1, failed: 1 });
    await w.stop(0);
    const failed = (await sidecars(t)).find((f) => f.includes('fails-once'))!;
    // Any file numbered higher (an image from an earlier run, say): new jobs come after it.
    await writeFile(join(t.tmp.dir, 'b', 'images', '00041-older-0123abcd.png'), 'x');

    t.mock.setFault(undefined);
    const s = await rerunFresh(t, ['fine', 'fails once', 'brand new']);
    expect(s).toMatchObject({ added: 2, onDisk: 1 });
    const waiting = await t.p.ctx.queue.getWaiting();
    const byPrompt = Object.fromEntries(waiting.map((j) => [j.data.prompt, j.data]));
    expect(byPrompt['fails once']!.file).toBe(`images/${failed.replace('.json', '.png')}`);
    expect(byPrompt['brand new']!.index).toBe(42);
  });
});
