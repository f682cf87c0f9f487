/**
 * Shared by the benchmarks: Redis prefixes and cleanup, child processes (the nightshift CLI and our
 * bare baselines), RSS sampling from /proc, the machine description, and in-process enqueueing.
 * Every benchmark uses its own `{nsbench-…}` prefix and removes its keys and files when done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import type { Queue } from 'bullmq';
import { loadConfig } from '../src/config.js';
import { parseInteger } from '../src/config/parse.js';
import { openQueueContext, type QueueContext } from '../src/ops/context.js';
import { enqueuePromptFiles, type EnqueueSummary } from '../src/queue/enqueue.js';
import type { GenerationDefaults } from '../src/prompts/types.js';
import { cleanupPrefix } from '../test/helpers/redis.js';
import { cliEnv, collect, ROOT, startCli, type CliResult } from '../test/helpers/cli.js';
import { tempDir } from '../test/helpers/temp.js';

export const silent = pino({ level: 'silent' });

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** Integer from the environment (sizes are configurable so a slow machine can shrink them). */
export function envInt(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  return parseInteger(raw, name, { min: 1 });
}

/** A prefix with its own hash tag, one per benchmark run, never shared with tests or users. */
export function benchPrefix(name: string): string {
  return `{nsbench-${name}-${randomBytes(4).toString('hex')}}`;
}

// The same clean-up the tests use: SCAN for the prefix, DEL what it finds.
export { cleanupPrefix };

export interface Child {
  proc: ChildProcess;
  startedAt: number;
  /** Resolves at exit with the code, wall time and captured output (stdout only when piped). */
  result: Promise<CliResult>;
}

/**
 * Env for a child nightshift, as the tests build it (no developer settings leak in), with this
 * machine's Redis, no inherited Node options and a user's progress interval.
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return cliEnv({ NODE_OPTIONS: undefined, NIGHTSHIFT_PROGRESS_INTERVAL: undefined, REDIS_URL: redisUrl(), ...extra });
}

/** `node bin/nightshift.js <args>`; stdout is discarded unless asked for (pino at info writes a line per job). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, opts: { captureStdout?: boolean } = {}): Child {
  const startedAt = Date.now();
  const proc = startCli(args, env, { stdout: opts.captureStdout ? 'pipe' : 'ignore' });
  return { proc, startedAt, result: proc.result };
}

/** A TypeScript file of ours in its own process, loaded through tsx like the CLI is. */
export function spawnTs(file: string, args: string[], env: NodeJS.ProcessEnv = childEnv({})): Child {
  const startedAt = Date.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, file), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { proc, startedAt, result: collect(proc, startedAt) };
}

/** Kills the child if it has not exited within `ms` (a hung benchmark must not hang `npm run bench`). */
export async function finish(child: Child, ms: number, what: string): Promise<Awaited<Child['result']>> {
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), ms);
  const r = await child.result;
  clearTimeout(timer);
  if (r.signal === 'SIGKILL')
    throw new Error(`${what} did not finish within ${ms / 1000} s; killed. stderr:\n${r.stderr}`);
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}. stderr:\n${r.stderr}`);
  return r;
}

export interface MemSample {
  t: number;
  rssKb: number;
}

/**
 * Samples VmRSS of a process every `everyMs`, and keeps the last VmHWM (peak RSS) and CPU time
 * (user + system, from /proc/<pid>/stat) seen before it exits.
 */
export function sampleMemory(pid: number, everyMs = 100, onSample?: (s: MemSample) => void) {
  const samples: MemSample[] = [];
  let hwmKb = 0;
  let cpuTicks = 0;
  const read = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      hwmKb = Math.max(hwmKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
      // Fields after the ")" that closes the command name: utime and stime are the 12th and 13th.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuTicks = Math.max(cpuTicks, Number(f[11]) + Number(f[12]));
      const s = { t: Date.now(), rssKb: rss };
      samples.push(s);
      onSample?.(s);
    } catch {
      // The process is gone: the last reading stands.
    }
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      // Clock ticks are 1/100 s on Linux.
      return { hwmMb: hwmKb / 1024, cpuMs: cpuTicks * 10, samples };
    },
  };
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memGb: number;
  node: string;
  redis: string;
  os: string;
  loadAvg: string;
}

export async function machine(redis: Redis): Promise<Machine> {
  const info = await redis.info('server');
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    os: `${os.type()} ${os.release()}`,
    loadAvg: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

/** A real queue context on our prefix, aimed at the fake API like a worker's STABILITY_API_HOST would be. */
export async function openBench(
  prefix: string,
  queue: string,
  out: string,
  apiUrl: string,
): Promise<QueueContext & { config: ReturnType<typeof loadConfig> }> {
  const config = loadConfig(
    { redis: redisUrl(), queue, out, prefix },
    { STABILITY_API_HOST: apiUrl, STABILITY_API_KEY: BENCH_KEY },
  );
  const ctx = await openQueueContext(config, redisUrl());
  return Object.assign(ctx, { config });
}

export const BENCH_KEY = 'sk-bench-key';

export interface BenchSetup {
  prefix: string;
  tmp: { dir: string; cleanup: () => Promise<void> };
  ctx: Awaited<ReturnType<typeof openBench>>;
  /** Closes the queue context (and the fake, when given one), deletes the prefix's keys and the temp folder. */
  close(): Promise<void>;
}

/** A benchmark run's own prefix, temp folder and queue context on the fake API at `mock.url`. */
export async function benchSetup(
  name: string,
  queue: string,
  mock: { url: string; close(): Promise<void> },
  ownsMock = true,
): Promise<BenchSetup> {
  const prefix = benchPrefix(name);
  const tmp = await tempDir(`nsbench-${name}-`);
  const ctx = await openBench(prefix, queue, tmp.dir, mock.url);
  return {
    prefix,
    tmp,
    ctx,
    async close() {
      await ctx.close();
      if (ownsMock) await mock.close();
      const redis = new Redis(redisUrl());
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
      await tmp.cleanup();
    },
  };
}

/** Enqueues prompt lines the product's way (validation, plan, state registration), no balance request. */
export async function enqueueLines(
  ctx: QueueContext & { config: ReturnType<typeof loadConfig> },
  lines: string[],
  opts: { batch: string; dir: string; defaults?: GenerationDefaults },
): Promise<EnqueueSummary> {
  const file = join(opts.dir, `${opts.batch}.txt`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return enqueuePromptFiles(
    {
      files: [file],
      defaults: opts.defaults ?? {},
      maxJobs: Math.max(10_000, lines.length),
      dryRun: false,
      force: false,
      batch: opts.batch,
    },
    {
      logger: silent,
      api: ctx.config.api.identity,
      out: ctx.config.out,
      connect: async () => ctx,
    },
  );
}

/** Distinct prompts (identical lines would collapse into one job). */
export function prompts(n: number, tag: string): string[] {
  const subjects = [
    'a lighthouse on a cliff',
    'a red fox in snow',
    'a city at night',
    'an anime sunset',
    'a quiet harbour',
  ];
  return Array.from(
    { length: n },
    (_, i) => `${subjects[i % subjects.length]}, ${tag} study number ${i + 1}, golden hour, warm light`,
  );
}

/** First job start to last job finish, from BullMQ's own timestamps: excludes process start-up and idle exit. */
export async function completedSpan(
  queue: Queue,
): Promise<{ count: number; spanMs: number; firstStart: number; lastFinish: number }> {
  let firstStart = Infinity;
  let lastFinish = 0;
  let count = 0;
  const PAGE = 1000;
  for (let start = 0; ; start += PAGE) {
    const jobs = await queue.getJobs(['completed'], start, start + PAGE - 1, true);
    for (const j of jobs) {
      count++;
      if (j.processedOn !== undefined) firstStart = Math.min(firstStart, j.processedOn);
      if (j.finishedOn !== undefined) lastFinish = Math.max(lastFinish, j.finishedOn);
    }
    if (jobs.length < PAGE) break;
  }
  return { count, spanMs: lastFinish - firstStart, firstStart, lastFinish };
}

export const fmt = {
  n: (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x)),
  mb: (x: number) => `${x.toFixed(0)} MB`,
  s: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
};

/** What each benchmark hands back to run.ts: a markdown section and its goals. */
export interface BenchResult {
  name: string;
  title: string;
  /** Markdown lines (tables, notes) for RESULTS.md; also printed. */
  lines: string[];
  goals: Array<{ what: string; value: string; goal: string; pass: boolean }>;
}

export function table(head: string[], rows: Array<Array<string | number>>): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** Runs a benchmark file directly (`tsx bench/x.ts`) as well as from run.ts. */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(url).pathname;
}

export function printResult(r: BenchResult): void {
  process.stdout.write(`\n## ${r.title}\n${r.lines.join('\n')}\n`);
  for (const g of r.goals)
    process.stdout.write(`  ${g.pass ? 'PASS' : 'MISS'}  ${g.what}: ${g.value} (goal ${g.goal})\n`);
}
