/**
 * 2. Pipeline overhead: end-to-end jobs/s of a nightshift worker process against the minimal correct
 * pipeline (a bare BullMQ Worker that POSTs to the same fake and writes durably), the same bare
 * pipeline writing what nightshift must leave per image (image, sidecar, manifest line), that one
 * again with the sidecar not fsynced (the most a pipeline leaving a sidecar file can reach) and a
 * no-op BullMQ worker, same concurrency, same run. Zero-latency fake with small images, rate limit out of the way.
 * The fake runs in this process, which does nothing else while the workers run (it waits for their
 * exit), so every pipeline shares the 2 cores with the same fake. Jobs/s = jobs ÷ (first job start →
 * last job finish) from BullMQ's timestamps, which leaves process start-up and idle exit out.
 * A second, smaller pass of each pipeline under Redis MONITOR counts the commands per job.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import {
  BENCH_KEY,
  benchPrefix,
  type BenchResult,
  benchSetup,
  type Child,
  childEnv,
  cleanupPrefix,
  completedSpan,
  enqueueLines,
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
} from './lib.js';
import { tempDir } from '../test/helpers/temp.js';

interface Figures {
  what: string;
  jobs: number;
  spanMs: number;
  jobsPerS: number;
  cpuMsPerJob: number;
}

async function measure(child: Child, queue: Queue, jobs: number, what: string): Promise<Figures> {
  const mem = sampleMemory(child.proc.pid!, 200);
  await finish(child, 300_000, what);
  const { cpuMs } = mem.stop();
  const span = await completedSpan(queue);
  if (span.count !== jobs) throw new Error(`${what}: ${span.count} of ${jobs} jobs completed`);
  return { what, jobs, spanMs: span.spanMs, jobsPerS: (jobs / span.spanMs) * 1000, cpuMsPerJob: cpuMs / jobs };
}

/** Counts the Redis commands a run sends on `prefix` (client commands, not the ones inside Lua scripts). */
function monitor(redis: Redis, prefix: string) {
  const counts = new Map<string, number>();
  let total = 0;
  let ours = 0;
  const ready = redis.monitor().then((m) => {
    // ioredis may report a stray reply on a monitoring connection as it closes: not the pipeline's.
    m.on('error', () => {});
    m.on('monitor', (_time: string, args: string[], source: string) => {
      if (source === 'lua' || !args.some((a) => a.includes(prefix))) return;
      total++;
      const cmd = args[0]!.toLowerCase();
      // Name a command by its first key, with the prefix dropped and job ids folded together.
      const key = (cmd === 'evalsha' || cmd === 'eval' ? args[3] : args[1]) ?? '';
      // nightshift's own keys are under <prefix>:ns:; the rest are BullMQ's.
      if (key.startsWith(`${prefix}:ns:`)) ours++;
      const label = `${cmd} ${key
        .replace(prefix, '')
        .replace(/[A-Za-z0-9]+--[0-9a-f]{24}|\bj\d+\b/g, '<job>')
        .replace(/:rl:[0-9a-f]{16}:/, ':rl:<key>:')
        .replace(/:api:[a-z0-9]+:/, ':')
        .replace(/^:/, '')}`;
      counts.set(label, (counts.get(label) ?? 0) + 1);
    });
    return m;
  });
  return {
    async stop() {
      (await ready).disconnect();
      return { total, ours, counts };
    },
  };
}

type BareMode = 'noop' | 'http' | 'files' | 'floor';
const BARE_NAMES: Record<BareMode, string> = {
  http: 'bare BullMQ + HTTP + durable write',
  files: 'bare BullMQ + HTTP + image, sidecar, manifest line',
  floor: 'bare BullMQ + HTTP + image, unsynced sidecar, manifest line',
  noop: 'bare BullMQ, no-op',
};

interface PipelineRun {
  mock: MockApi;
  jobs: number;
  concurrency: number;
  /** A connection to MONITOR the pipeline's Redis commands on. */
  watch?: Redis;
}

async function nightshift({ mock, jobs, concurrency, watch }: PipelineRun, logLevel: string) {
  // The fake is shared by every pipeline of the run: not ours to close.
  const b = await benchSetup('ov-ns', 'ov', mock, false);
  const { prefix, tmp, ctx } = b;
  try {
    await enqueueLines(ctx, prompts(jobs, 'overhead'), { batch: 'ov', dir: tmp.dir });
    const mon = watch ? monitor(watch, prefix) : null;
    const child = spawnCli(
      [
        'work',
        '--exit-when-idle',
        '--concurrency',
        String(concurrency),
        '--rate',
        '100000/1',
        '--queue',
        'ov',
        '--prefix',
        prefix,
        '--out',
        tmp.dir,
        '--redis',
        redisUrl(),
        '--log-level',
        logLevel,
      ],
      childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY }),
    );
    const f = await measure(child, ctx.queue, jobs, `nightshift (log ${logLevel})`);
    return { f, mon: await mon?.stop() };
  } finally {
    await b.close();
  }
}

async function bare(mode: BareMode, { mock, jobs, concurrency, watch }: PipelineRun) {
  const prefix = benchPrefix(`ov-${mode}`);
  const tmp = await tempDir(`nsbench-ov-${mode}-`);
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const queue = new Queue('bare', { connection: redis, prefix });
  try {
    const list = prompts(jobs, 'overhead');
    for (let i = 0; i < jobs; i += 500) {
      await queue.addBulk(
        list
          .slice(i, i + 500)
          .map((prompt, k) => ({ name: 'g', data: { prompt, seed: i + k + 1 }, opts: { jobId: `j${i + k}` } })),
      );
    }
    const mon = watch ? monitor(watch, prefix) : null;
    const args = [
      mode,
      'bare',
      prefix,
      String(concurrency),
      String(jobs),
      ...(mode === 'noop' ? [] : [mock.url, tmp.dir]),
    ];
    const f = await measure(spawnTs('bench/bare-worker.ts', args), queue, jobs, BARE_NAMES[mode]);
    return { f, mon: await mon?.stop() };
  } finally {
    await queue.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    await tmp.cleanup();
  }
}

export async function run(): Promise<BenchResult> {
  const jobs = envInt('BENCH_OVERHEAD_JOBS', 1500);
  const rounds = envInt('BENCH_OVERHEAD_ROUNDS', 2);
  const profileJobs = envInt('BENCH_OVERHEAD_PROFILE_JOBS', 200);
  const concurrency = envInt('BENCH_OVERHEAD_CONCURRENCY', 32);
  const logLevel = process.env.BENCH_LOG_LEVEL ?? 'info';
  const mock = await startMockApi({ latencyMs: 0 });
  try {
    // Alternate the pipelines so background load (other processes on the machine) hits each alike.
    const all: Figures[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const step of ['ns', 'http', 'files', 'floor', 'noop'] as const) {
        const { f } =
          step === 'ns'
            ? await nightshift({ mock, jobs, concurrency }, logLevel)
            : await bare(step, { mock, jobs, concurrency });
        process.stdout.write(`  overhead round ${r + 1}: ${f.what}: ${fmt.n(f.jobsPerS)} jobs/s\n`);
        all.push(f);
      }
    }
    const best = (what: string) =>
      all.filter((f) => f.what.startsWith(what)).sort((a, b) => b.jobsPerS - a.jobsPerS)[0]!;
    const ns = best('nightshift');
    const floor = best(BARE_NAMES.floor);
    const http = best(BARE_NAMES.http);
    const files = best(BARE_NAMES.files);
    const noop = best(BARE_NAMES.noop);
    const ratio = ns.jobsPerS / http.jobsPerS;
    const sameFiles = ns.jobsPerS / files.jobsPerS;

    const watch = new Redis(redisUrl());
    const pNs = (await nightshift({ mock, jobs: profileJobs, concurrency, watch }, logLevel)).mon!;
    const pHttp = (await bare('http', { mock, jobs: profileJobs, concurrency, watch })).mon!;
    watch.disconnect();
    const top = [...pNs.counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 14);

    const lines = [
      `${jobs} jobs per pipeline, concurrency ${concurrency}, ${rounds} alternating round(s) (best of each shown), zero-latency fake in the bench process, ` +
        `64×64 PNG placeholders, \`--rate 100000/1\`, nightshift at log level ${logLevel} (stdout to /dev/null).`,
      '',
      ...table(
        ['pipeline', 'jobs/s (best)', 'all rounds', 'worker CPU per job', 'ratio to bare HTTP'],
        [ns, http, files, floor, noop].map((f) => [
          f.what,
          `**${fmt.n(f.jobsPerS)}**`,
          all
            .filter((a) => a.what === f.what)
            .map((a) => fmt.n(a.jobsPerS))
            .join(', '),
          `${fmt.n(f.cpuMsPerJob, 2)} ms`,
          fmt.n(f.jobsPerS / http.jobsPerS, 2),
        ]),
      ),
      '',
      `Redis commands per job (MONITOR, ${profileJobs} jobs, client commands only, not those inside scripts): nightshift ${fmt.n(pNs.total / profileJobs)} in all, ` +
        `of which ${fmt.n(pNs.ours / profileJobs)} on its own keys and ${fmt.n((pNs.total - pNs.ours) / profileJobs)} BullMQ's; ` +
        `bare HTTP pipeline ${fmt.n(pHttp.total / profileJobs)}. nightshift's worker, by command and first key:`,
      '',
      ...table(
        ['command', 'per job'],
        top.map(([label, n]) => [`\`${label}\``, fmt.n(n / profileJobs, 2)]),
      ),
    ];
    return {
      name: 'overhead',
      title: '2. Pipeline overhead',
      lines,
      goals: [
        { what: 'nightshift ÷ bare HTTP pipeline (jobs/s)', value: fmt.n(ratio, 2), goal: '≥ 0.8', pass: ratio >= 0.8 },
        {
          // Against the bare pipeline writing the same files, what is left is nightshift's own work,
          // not the files every pipeline keeping a sidecar and a manifest line must write.
          what: 'nightshift ÷ bare pipeline writing the same files (jobs/s)',
          value: fmt.n(sameFiles, 2),
          goal: '≥ 0.8',
          pass: sameFiles >= 0.8,
        },
        {
          what: 'bare pipeline writing those files ÷ bare HTTP pipeline (jobs/s)',
          value: fmt.n(files.jobsPerS / http.jobsPerS, 2),
          goal: 'report',
          pass: true,
        },
        {
          // A second file per image costs the kernel about what its fsync does: this is the ceiling
          // of the first ratio for any pipeline that leaves a sidecar per image.
          what: 'bare pipeline with the sidecar not fsynced ÷ bare HTTP pipeline (jobs/s)',
          value: fmt.n(floor.jobsPerS / http.jobsPerS, 2),
          goal: 'report',
          pass: true,
        },
        {
          what: "nightshift's own Redis calls per job",
          value: fmt.n(pNs.ours / profileJobs, 2),
          goal: '≤ 4',
          pass: pNs.ours / profileJobs <= 4,
        },
      ],
    };
  } finally {
    await mock.close();
  }
}

if (isMain(import.meta.url)) printResult(await run());
