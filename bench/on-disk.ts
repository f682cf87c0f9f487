/**
 * 7. Enqueue against a batch folder that already holds every image: `nightshift enqueue` of 100,000
 * prompts on a fresh queue and a fresh Redis prefix (as after a wiped Redis) when the batch folder
 * already has all 100,000 images and sidecars, against the same enqueue into an empty folder (which
 * adds all 100,000 jobs) in the same run. The folder is listed once; only sidecars whose name ends
 * with a planned job's 8 hex digits are read.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadPromptFilesOrThrow } from '../src/prompts/load.js';
import { buildJob, identifyJobs } from '../src/queue/plan.js';
import { buildRecord } from '../src/output/finalize.js';
import { batchDir, sidecarPathFor } from '../src/output/paths.js';
import { mapLimit, normalizeRecord } from '../src/output/sidecar.js';
import {
  benchPrefix,
  childEnv,
  cleanupPrefix,
  envInt,
  finish,
  fmt,
  isMain,
  printResult,
  prompts,
  redisUrl,
  sampleMemory,
  spawnCli,
  table,
  type BenchResult,
} from './lib.js';
import { tempDir } from '../test/helpers/temp.js';

interface Figures {
  what: string;
  ms: number;
  peakMb: number;
  added: number;
  onDisk: number;
}

const IMAGE = Buffer.from('89504e470d0a1a0a0000', 'hex');

/** Writes, for every job of the prompt file, the image and sidecar a worker would have left. */
async function fillBatchFolder(file: string, out: string, n: number): Promise<void> {
  const { specs } = await loadPromptFilesOrThrow([file], {}, { maxPrompts: 2 * n });
  const ident = identifyJobs(specs, 'b', 'mock');
  const dir = batchDir(out, { api: 'mock', batch: 'b' });
  await mkdir(join(dir, 'images'), { recursive: true });
  const now = Date.now();
  await mapLimit(
    ident.ids.map((_, i) => i),
    64,
    async (i) => {
      const { id, data } = buildJob(specs[ident.spec[i]!]!, ident, i, { batch: 'b', api: 'mock', index: i + 1 });
      const record = buildRecord(
        { id, attemptsMade: 0, data },
        {
          status: 'succeeded',
          file: data.file,
          bytes: IMAGE.length,
          sha256: '0'.repeat(64),
          seed: data.seed,
          credits: data.credits,
          error: null,
          startedAt: now,
        },
        now,
      );
      await writeFile(join(dir, data.file), IMAGE);
      await writeFile(join(dir, sidecarPathFor(data.file)), `${JSON.stringify(normalizeRecord(record), null, 2)}\n`);
    },
  );
}

async function measure(o: { file: string; out: string; n: number; what: string }, redis: Redis): Promise<Figures> {
  const prefix = benchPrefix('disk');
  try {
    const args = ['enqueue', o.file, '--max-jobs', String(2 * o.n), '--mock', '--queue', 'disk'];
    const child = spawnCli(
      [...args, '--out', o.out, '--prefix', prefix, '--batch', 'b', '--json', '--log-level', 'warn'],
      childEnv({}),
      { captureStdout: true },
    );
    const mem = sampleMemory(child.proc.pid!, 50);
    const r = await finish(child, 600_000, o.what);
    const { hwmMb } = mem.stop();
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as { added: number; onDisk: number };
    return { what: o.what, ms: r.ms, peakMb: hwmMb, added: s.added, onDisk: s.onDisk };
  } finally {
    await cleanupPrefix(redis, prefix);
  }
}

export async function run(): Promise<BenchResult> {
  const n = envInt('BENCH_ON_DISK_IMAGES', 100_000);
  const tmp = await tempDir('nsbench-disk-');
  const redis = new Redis(redisUrl());
  try {
    const file = join(tmp.dir, 'prompts.txt');
    await writeFile(file, `${prompts(n, 'on disk').join('\n')}\n`);
    const empty = join(tmp.dir, 'empty');
    const full = join(tmp.dir, 'full');
    const t0 = Date.now();
    await fillBatchFolder(file, full, n);
    process.stdout.write(`  on-disk: wrote ${n} images and sidecars in ${fmt.s(Date.now() - t0)}\n`);

    const baseline = await measure({ file, out: empty, n, what: 'empty folder: adds every job' }, redis);
    const skip = await measure({ file, out: full, n, what: 'every image on disk: adds none' }, redis);
    if (baseline.added !== n) throw new Error(`the baseline added ${baseline.added} of ${n} jobs`);
    if (skip.added !== 0 || skip.onDisk !== n) throw new Error(`added ${skip.added}, on disk ${skip.onDisk} of ${n}`);
    const figures = [baseline, skip];
    for (const f of figures) process.stdout.write(`  on-disk: ${f.what}: ${fmt.s(f.ms)}, peak ${fmt.mb(f.peakMb)}\n`);
    const lines = [
      `${n} distinct prompts; fresh queue and Redis prefix each time; wall time of the \`nightshift enqueue\` child from spawn to exit, peak RSS = its VmHWM.`,
      '',
      ...table(
        ['what', 'wall time', 'added', 'already on disk', 'peak RSS', 'time ÷ empty folder'],
        figures.map((f) => [f.what, fmt.s(f.ms), f.added, f.onDisk, fmt.mb(f.peakMb), fmt.n(f.ms / baseline.ms, 2)]),
      ),
    ];
    const ratio = skip.ms / baseline.ms;
    const goals = [
      {
        what: 'skipping every image on disk ÷ adding every job',
        value: fmt.n(ratio, 2),
        goal: '≤ 1.5',
        pass: ratio <= 1.5,
      },
      {
        what: 'peak RSS with every image on disk',
        value: fmt.mb(skip.peakMb),
        goal: '≤ 400 MB',
        pass: skip.peakMb <= 400,
      },
    ];
    return { name: 'on-disk', title: '7. Enqueue with every image already on disk', lines, goals };
  } finally {
    redis.disconnect();
    await tmp.cleanup();
  }
}

if (isMain(import.meta.url)) printResult(await run());
