/**
 * 3. Enqueue: wall time and peak RSS (VmHWM of the child) of `nightshift enqueue` on 100,000 prompts
 * from a .txt and from a .jsonl, against a bare addBulk of the same planned jobs (same ids, data and
 * options, streamed from a file) in the same run. Both sides are child processes loaded through tsx,
 * so both pay the same start-up. The fake API is not involved (`--mock` enqueues without a balance check).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadPromptFilesOrThrow } from '../src/prompts/load.js';
import { buildJob, identifyJobs } from '../src/queue/plan.js';
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
  spawnTs,
  table,
  type BenchResult,
  type Child,
} from './lib.js';
import { tempDir } from '../test/helpers/temp.js';

interface Figures {
  what: string;
  ms: number;
  peakMb: number;
  added: number;
}

async function measure(start: (prefix: string) => Child, what: string, redis: Redis): Promise<Figures> {
  const prefix = benchPrefix('enq');
  try {
    const child = start(prefix);
    const mem = sampleMemory(child.proc.pid!, 50);
    const r = await finish(child, 300_000, what);
    const { hwmMb } = mem.stop();
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { added: number };
    return { what, ms: r.ms, peakMb: hwmMb, added: out.added };
  } finally {
    await cleanupPrefix(redis, prefix);
  }
}

export async function run(): Promise<BenchResult> {
  const n = envInt('BENCH_ENQUEUE_PROMPTS', 100_000);
  const tmp = await tempDir('nsbench-enq-');
  const redis = new Redis(redisUrl());
  try {
    const list = prompts(n, 'enqueue');
    const txt = join(tmp.dir, 'prompts.txt');
    const jsonl = join(tmp.dir, 'prompts.jsonl');
    await writeFile(txt, `${list.join('\n')}\n`);
    await writeFile(jsonl, `${list.map((prompt) => JSON.stringify({ prompt })).join('\n')}\n`);
    // The baseline adds exactly what nightshift would: plan here, untimed, and stream the result.
    const { specs } = await loadPromptFilesOrThrow([txt], {}, { maxPrompts: 2 * n });
    const ident = identifyJobs(specs, 'b', 'mock');
    const jobs = ident.ids.map((_, i) =>
      buildJob(specs[ident.spec[i]!]!, ident, i, { batch: 'b', api: 'mock', index: i + 1 }),
    );
    const planned = join(tmp.dir, 'planned.jsonl');
    await writeFile(planned, `${jobs.map((j) => JSON.stringify({ id: j.id, data: j.data })).join('\n')}\n`);

    const env = childEnv({});
    const cli = (file: string) => (prefix: string) =>
      spawnCli(
        [
          'enqueue',
          file,
          '--max-jobs',
          String(2 * n),
          '--mock',
          '--queue',
          'enq',
          '--prefix',
          prefix,
          '--redis',
          redisUrl(),
          '--batch',
          'b',
          '--json',
          '--log-level',
          'warn',
        ],
        env,
        { captureStdout: true },
      );
    const bare = (prefix: string) => spawnTs('bench/bare-enqueue.ts', [planned, 'enq', prefix], env);

    const figures: Figures[] = [];
    for (const [what, start] of [
      ['nightshift enqueue .txt', cli(txt)],
      ['bare addBulk', bare],
      ['nightshift enqueue .jsonl', cli(jsonl)],
      // A second baseline run evens out background load when there is time for it.
      ...(process.env.BENCH_ENQUEUE_BARE_TWICE === '1' ? [['bare addBulk (2)', bare] as const] : []),
    ] as const) {
      const f = await measure(start, what, redis);
      if (f.added !== n) throw new Error(`${what} added ${f.added} of ${n} jobs`);
      process.stdout.write(`  enqueue: ${what}: ${fmt.s(f.ms)}, peak ${fmt.mb(f.peakMb)}\n`);
      figures.push(f);
    }
    const bares = figures.filter((f) => f.what.startsWith('bare'));
    const bareMs = Math.min(...bares.map((f) => f.ms));
    const bareMb = Math.max(...bares.map((f) => f.peakMb));
    const ns = [figures[0]!, figures[2]!];
    const lines = [
      `${n} distinct prompts (${fmt.n(list.join('\n').length / 2 ** 20)} MB of .txt); wall time of each child process from spawn to exit, peak RSS = its VmHWM.`,
      '',
      ...table(
        ['what', 'wall time', 'jobs/s', 'peak RSS', 'time ÷ bare', 'RSS ÷ bare'],
        figures.map((f) => [
          f.what,
          fmt.s(f.ms),
          fmt.n((n / f.ms) * 1000, 0),
          fmt.mb(f.peakMb),
          fmt.n(f.ms / bareMs, 2),
          fmt.n(f.peakMb / bareMb, 2),
        ]),
      ),
      '',
      'The ratios use the faster bare run and the larger bare peak.',
    ];
    const goals = ns.flatMap((f) => [
      {
        what: `${f.what}: time ÷ bare addBulk`,
        value: fmt.n(f.ms / bareMs, 2),
        goal: '≤ 1.5',
        pass: f.ms / bareMs <= 1.5,
      },
      { what: `${f.what}: peak RSS`, value: fmt.mb(f.peakMb), goal: '≤ 300 MB', pass: f.peakMb <= 300 },
    ]);
    return { name: 'enqueue', title: '3. Enqueue', lines, goals };
  } finally {
    redis.disconnect();
    await tmp.cleanup();
  }
}

if (isMain(import.meta.url)) printResult(await run());
