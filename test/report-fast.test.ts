/**
 * The end of `run` uses the manifest its workers appended instead of reading every sidecar, only
 * when that manifest is whole and covers every job of the batch; otherwise it rebuilds as `report`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport } from '../src/ops/report.js';
import { usePipeline, waitForBatch } from './helpers/pipeline.js';

describe('the report at the end of a run', () => {
  const t = usePipeline({ latencyMs: [1, 5] });
  const ref = () => ({ api: t.p.config.api.identity, batch: 'b' });
  const jobIds = async () => [...(await t.p.ctx.state.states('b')).keys()];

  it('gives the same records from the appended manifest as a rebuild from the sidecars', async () => {
    await t.p.enqueue(['fast one', 'fast two', 'fast three']);
    await t.p.startWorker();
    await waitForBatch(t.p);
    const fast = await buildReport(t.tmp.dir, ref(), { jobs: await jobIds() });
    const full = await buildReport(t.tmp.dir, ref());
    expect(fast.records).toEqual(full.records);
    expect(fast).toMatchObject({ succeeded: 3, jobs: 3, repaired: { missing: 0, truncated: 0 } });
  });

  it('rebuilds from the sidecars when the manifest misses a job', async () => {
    await t.p.enqueue(['kept one', 'kept two']);
    await t.p.startWorker();
    await waitForBatch(t.p);
    const manifest = join(t.tmp.dir, 'b', 'manifest.jsonl');
    const [first] = (await readFile(manifest, 'utf8')).split('\n');
    await writeFile(manifest, `${first}\n`);
    const r = await buildReport(t.tmp.dir, ref(), { jobs: await jobIds() });
    expect(r).toMatchObject({ succeeded: 2, jobs: 2, repaired: { missing: 1 } });
    expect((await readFile(manifest, 'utf8')).trim().split('\n')).toHaveLength(2);
  });
});
