import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../src/errors.js';
import { createJobLookup, defaultJobOptions, JOB_NAME } from '../src/queue/queue.js';
import { pipeline, usePipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';

// A shared mount that cannot answer for one file (EIO, ESTALE): the paths and keys listed here fail.
const lstatFails = new Set<string>();
const readFails = new Set<string>();

vi.mock('node:fs/promises', async (orig) => {
  const real = (await orig()) as typeof import('node:fs/promises');
  const lstat = (async (p: string, ...rest: unknown[]) => {
    if (lstatFails.has(String(p))) throw Object.assign(new Error(`EIO: i/o error, lstat '${p}'`), { code: 'EIO' });
    return (real.lstat as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof real.lstat;
  return { ...real, lstat, default: { ...real, lstat } };
});

vi.mock('../src/output/storage/folder-store.js', async (orig) => {
  const real = (await orig()) as typeof import('../src/output/storage/folder-store.js');
  return {
    ...real,
    folderStore(dir: string) {
      const store = real.folderStore(dir);
      return {
        ...store,
        async get(key: string, max: number) {
          if (readFails.has(key)) throw new StorageError(`cannot read ${key}: EIO (injected)`, 'EIO');
          return store.get(key, max);
        },
      };
    },
  };
});

afterEach(() => {
  lstatFails.clear();
  readFails.clear();
});

describe('a disk that cannot tell whether an image is there never reads as "not paid"', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it('a finished job delivered again while its image cannot be looked at sends nothing', async () => {
    await t.p.enqueue(['a lighthouse in fog']);
    await t.p.startWorker();
    await waitForBatch(t.p);
    const [job] = await t.p.ctx.queue.getCompleted();
    // At least once: the same job comes back (its worker died before the queue heard it finished).
    await job!.remove();
    lstatFails.add(join(t.tmp.dir, 'b', job!.data.file));
    await t.p.ctx.queue.add(JOB_NAME, job!.data, { ...defaultJobOptions(), jobId: job!.id! });
    await until('the copy was tried', async () => (await t.p.ctx.queue.getJob(job!.id!))!.attemptsMade >= 1);
    lstatFails.clear();
    const lookup = createJobLookup(t.p.ctx.redis, t.p.ctx.prefix, t.p.ctx.queueName);
    await until('drained', async () => (await lookup.unfinished([job!.id!])).size === 0);
    expect([...t.mock.stats.generations.values()]).toEqual([1]);
    expect((await t.p.ctx.ledger.get('b')).billed).toBe(3);
  });

  describe('the same batch on a second queue', () => {
    let other: Pipeline;
    beforeEach(async () => {
      other = await pipeline({ prefix: t.prefix, out: t.tmp.dir, apiUrl: t.mock.url, queue: 'q2' });
    });
    afterEach(() => other.close());

    it('a copy whose recorded sidecar cannot be read waits instead of paying again', async () => {
      await t.p.enqueue(['a harbour at dusk']);
      await other.enqueue(['a harbour at dusk']);
      await t.p.startWorker();
      await waitForBatch(t.p);
      const ids = [...(await t.p.ctx.state.states('b')).keys()];
      const file = await t.p.ctx.state.doneFile('b', ids[0]!);
      readFails.add(file!.replace(/\.[a-z]+$/, '.json'));
      await other.startWorker();
      const [copy] = await other.ctx.queue.getJobs(['wait', 'active', 'delayed', 'failed', 'completed']);
      await until('the copy was tried', async () => (await other.ctx.queue.getJob(copy!.id!))!.attemptsMade >= 1);
      readFails.clear();
      const lookup = createJobLookup(other.ctx.redis, other.ctx.prefix, other.ctx.queueName);
      await until('q2 drained', async () => (await lookup.unfinished(ids)).size === 0);
      expect([...t.mock.stats.generations.values()]).toEqual([1]);
      expect((await t.p.ctx.ledger.get('b')).billed).toBe(3);
    });
  });
});
