import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';

describe('crash: `nightshift report` repairs a manifest a crash left behind', () => {
  const t = usePipeline({ latencyMs: [1, 10] });

  it('a line cut mid-write, a whole line glued to it and missing lines: exit 0, one line per job, in index order', async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => (i === 4 ? 'a forbidden thing' : `report repair prompt ${i}`));
    await t.p.enqueue(prompts);
    await t.p.startWorker();
    await waitForBatch(t.p);
    const file = join(t.tmp.dir, 'b', 'manifest.jsonl');
    const original = (await readManifest(file)).records;
    expect(original).toHaveLength(8);
    const lineOf = new Map(original.map((r) => [r.index, `${JSON.stringify(r)}\n`]));

    // What a crash leaves (indexes start at 1): appends out of index order, lines 2 and 7 never
    // written, line 4 cut mid-write by a kill and line 8 appended right after it by another worker.
    const order = [5, 1, 3, 6];
    const cut = lineOf.get(4)!.slice(0, 57);
    await writeFile(file, `${order.map((i) => lineOf.get(i)).join('')}${cut}${lineOf.get(8)}`);
    const before = await readManifest(file);
    expect(before.records.map((r) => r.index)).toEqual([5, 1, 3, 6, 8]);
    expect(before.badLines).toBe(1);

    const res = await runCli(['report', '--batch', 'b', '--out', t.tmp.dir], cliEnv({ NIGHTSHIFT_PREFIX: t.prefix }));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('8 jobs: 7 succeeded, 0 filtered, 1 failed');
    expect(res.stdout).toContain('(repaired: 3 missing, 1 bad lines)');

    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    expect(lines.pop()).toBe(''); // ends with a newline: nothing cut short
    expect(lines).toHaveLength(8);
    const after = lines.map((l) => JSON.parse(l) as { index: number; id: string });
    expect(after.map((r) => r.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The rebuilt lines are the records the workers wrote, taken back from the sidecars.
    expect((await readManifest(file)).records).toEqual([...original].sort((a, b) => a.index - b.index));
  });
});
