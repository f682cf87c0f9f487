import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import { enqueuePromptFiles } from '../src/queue/enqueue.js';
import { loadPromptFiles } from '../src/prompts/load.js';
import { readPngText } from '../src/metadata/png-text.js';
import type { JobData } from '../src/queue/job-data.js';
import type { ManifestRecord } from '../src/output/record.js';
import { silent, waitForBatch, usePipeline } from './helpers/pipeline.js';
import { listChunks, tinyPng, pngChunk } from './output-fixtures.js';

/** The picture itself: every chunk but the text ones (which name the job and batch). */
function pixels(png: Buffer): string {
  return listChunks(png)
    .filter((c) => !['tEXt', 'iTXt', 'zTXt'].includes(c.type))
    .map((c) => `${c.type}:${c.data.toString('hex')}`)
    .join('|');
}

async function records(batchDir: string): Promise<ManifestRecord[]> {
  const text = await readFile(join(batchDir, 'manifest.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ManifestRecord);
}

describe('PNG metadata round trip: re-run an image from its PNG or a manifest', () => {
  const t = usePipeline({ latencyMs: 0 });

  const enqueueFiles = (files: string[], batch: string) =>
    enqueuePromptFiles(
      {
        files,
        defaults: { model: 'ultra', negative_prompt: 'from the command line' },
        maxJobs: 1000,
        dryRun: false,
        force: false,
        batch,
      },
      {
        logger: silent,
        api: t.p.config.api.identity,
        out: t.p.config.out,
        connect: async () => t.p.ctx,
      },
    );

  it('enqueues the identical request from a PNG and gets the identical image', async () => {
    // Braces that are literal in the original (escaped) must stay literal on the re-run.
    await t.p.enqueue(
      [
        JSON.stringify({
          prompt: 'a red fox, curly \\{a|b\\}, "quoted"',
          negative_prompt: 'blurry, low quality',
          model: 'core',
          aspect_ratio: '16:9',
          style_preset: 'anime',
        }),
      ],
      { batch: 'first', ext: 'jsonl' },
    );
    await t.p.startWorker();
    await waitForBatch(t.p, 'first');
    const [orig] = await records(join(t.tmp.dir, 'first'));
    expect(orig!.status).toBe('succeeded');
    expect(orig!.prompt).toBe('a red fox, curly {a|b}, "quoted"');
    const origPng = await readFile(join(t.tmp.dir, 'first', orig!.file!));

    const copy = join(t.tmp.dir, 'again.png');
    await copyFile(join(t.tmp.dir, 'first', orig!.file!), copy);
    const summary = await enqueueFiles([copy], 'again');
    expect(summary.jobs).toBe(1);
    const jobs = (await t.p.ctx.queue.getJobs([
      'wait',
      'active',
      'completed',
      'delayed',
      'prioritized',
    ])) as Job<JobData>[];
    const job = jobs.find((j) => j.data.batch === 'again')!;
    // The command line's --model and --negative do not change an exact re-run.
    expect({
      model: job.data.model,
      prompt: job.data.prompt,
      negative_prompt: job.data.negative_prompt,
      params: job.data.params,
      seed: job.data.seed,
    }).toEqual({
      model: orig!.model,
      prompt: orig!.prompt,
      negative_prompt: orig!.negative_prompt,
      params: orig!.params,
      seed: orig!.seed,
    });

    await waitForBatch(t.p, 'again');
    const [rerun] = await records(join(t.tmp.dir, 'again'));
    expect(rerun!.status).toBe('succeeded');
    // The fake saw the same (model, prompt, seed) twice, and nothing else.
    expect([...t.mock.stats.generations.entries()]).toEqual([[`${orig!.model}|${orig!.prompt}|${orig!.seed}`, 2]]);
    const rerunPng = await readFile(join(t.tmp.dir, 'again', rerun!.file!));
    expect(pixels(rerunPng)).toBe(pixels(origPng));
    const meta = JSON.parse(readPngText(rerunPng).text.nightshift!) as Record<string, unknown>;
    expect(meta).toMatchObject({
      batch: 'again',
      model: orig!.model,
      prompt: orig!.prompt,
      negative_prompt: orig!.negative_prompt,
      params: orig!.params,
      seed: orig!.seed,
    });
  });

  it('re-runs every job of a manifest, variants already expanded', async () => {
    await t.p.enqueue(['a {cat|dog} on a roof', 'a lighthouse'], { batch: 'm', defaults: { samples: 2 } });
    await t.p.startWorker();
    await waitForBatch(t.p, 'm');
    const orig = await records(join(t.tmp.dir, 'm'));
    expect(orig).toHaveLength(6);
    const file = join(t.tmp.dir, 'm.manifest.jsonl');
    // A stale earlier line for the same id: the last line per id wins.
    await writeFile(
      file,
      `${JSON.stringify({ ...orig[0], seed: 1 })}\n${await readFile(join(t.tmp.dir, 'm', 'manifest.jsonl'), 'utf8')}`,
    );
    const loaded = await loadPromptFiles([file], { samples: 3 });
    expect(loaded.problems).toEqual([]);
    expect(loaded.specs.map((s) => [s.prompt, s.seed, s.samples])).toEqual(orig.map((r) => [r.prompt, r.seed, 1]));

    const summary = await enqueueFiles([file], 'm2');
    expect(summary.jobs).toBe(6);
    await waitForBatch(t.p, 'm2');
    for (const v of t.mock.stats.generations.values()) expect(v).toBe(2);
    expect(t.mock.stats.generations.size).toBe(6);
  });

  it('reports a PNG without metadata and a bad manifest line by file, line and field', async () => {
    const bare = join(t.tmp.dir, 'bare.png');
    await writeFile(bare, tinyPng());
    const a1111 = join(t.tmp.dir, 'a1111.png');
    await writeFile(
      a1111,
      tinyPng(3, 2, [
        pngChunk(
          'tEXt',
          Buffer.from('parameters\0a castle\nNegative prompt: fog\nSeed: 77, Model: core, Aspect ratio: 1:1', 'latin1'),
        ),
      ]),
    );
    const bad = join(t.tmp.dir, 'bad.manifest.jsonl');
    await writeFile(bad, `{"prompt":"x","model":"core","params":{"output_format":"png"}}\nnot json\n`);
    const res = await loadPromptFiles([bare, a1111, bad], {});
    expect(res.problems).toEqual([
      { file: bare, line: 0, field: 'file', message: 'has no nightshift or parameters text chunk to re-run' },
      { file: bad, line: 1, field: 'seed', message: 'is required in a manifest record' },
      { file: bad, line: 2, field: 'line', message: 'not a JSON object (a manifest line is one JSON record)' },
    ]);
    const ok = await loadPromptFiles([a1111], {});
    expect(ok.specs.map((s) => [s.prompt, s.negative_prompt, s.model, s.seed])).toEqual([
      ['a castle', 'fog', 'core', 77],
    ]);
  });
});
