/**
 * 4. Worker memory: RSS of one `nightshift work` process over 2,000 jobs of ~1.5 MB PNGs at
 * concurrency 32 (zero-latency fake, rate limit out of the way). RSS is sampled every 100 ms with the
 * batch's progress, so the first and the last thousand jobs can be compared: memory must stay flat.
 * The fake runs in this process; its 1.5 MB bodies are cached padding, cheap to serve.
 */
import { startMockApi } from '../src/mock-api/server.js';
import {
  BENCH_KEY,
  type BenchResult,
  benchSetup,
  childEnv,
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
  table,
} from './lib.js';

export async function run(): Promise<BenchResult> {
  const jobs = envInt('BENCH_MEMORY_JOBS', 2000);
  const imageBytes = envInt('BENCH_MEMORY_IMAGE_BYTES', 1_500_000);
  const concurrency = envInt('BENCH_MEMORY_CONCURRENCY', 32);
  const mock = await startMockApi({ latencyMs: 0, imageBytes });
  const b = await benchSetup('mem', 'mem', mock);
  const { prefix, tmp, ctx } = b;
  try {
    await enqueueLines(ctx, prompts(jobs, 'memory'), { batch: 'mem', dir: tmp.dir });
    const child = spawnCli(
      [
        'work',
        '--exit-when-idle',
        '--concurrency',
        String(concurrency),
        '--rate',
        '100000/1',
        '--queue',
        'mem',
        '--prefix',
        prefix,
        '--out',
        tmp.dir,
        '--redis',
        redisUrl(),
        '--log-level',
        process.env.BENCH_LOG_LEVEL ?? 'info',
      ],
      childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY }),
    );
    // Progress (jobs finished) beside each RSS sample; read from the batch counters every 250 ms.
    let done = 0;
    const progress = setInterval(
      () =>
        void ctx.state
          .counts('mem')
          .then((c) => (done = c.total - c.pending))
          .catch(() => {}),
      250,
    );
    const tagged: Array<{ rssMb: number; done: number }> = [];
    const mem = sampleMemory(child.proc.pid!, 100, (s) => tagged.push({ rssMb: s.rssKb / 1024, done }));
    const r = await finish(child, 600_000, 'memory worker');
    clearInterval(progress);
    const { hwmMb } = mem.stop();
    const counts = await ctx.state.counts('mem');
    if (counts.succeeded !== jobs) throw new Error(`memory run ended with ${JSON.stringify(counts)}`);
    const half = jobs / 2;
    const first = tagged.filter((t) => t.done > 0 && t.done < half).map((t) => t.rssMb);
    const last = tagged.filter((t) => t.done >= half && t.done < jobs).map((t) => t.rssMb);
    const stats = (xs: number[]) => {
      const s = [...xs].sort((x, y) => x - y);
      return {
        n: s.length,
        median: s[Math.floor(s.length / 2)] ?? NaN,
        p90: s[Math.floor(s.length * 0.9)] ?? NaN,
        max: s[s.length - 1] ?? NaN,
      };
    };
    const early = stats(first);
    const late = stats(last);
    const growth = late.median / early.median;
    const lines = [
      `${jobs} jobs of ${fmt.n(imageBytes / 1e6)} MB PNGs, concurrency ${concurrency}, one worker process, ${fmt.s(r.ms)} wall ` +
        `(${fmt.n((jobs / r.ms) * 1000)} jobs/s incl. start-up, ${fmt.n((jobs * imageBytes) / 2 ** 20 / (r.ms / 1000))} MB/s written durably).`,
      '',
      ...table(
        ['jobs finished', 'RSS samples', 'median RSS', 'p90 RSS', 'max RSS'],
        [
          [`first ${half}`, early.n, fmt.mb(early.median), fmt.mb(early.p90), fmt.mb(early.max)],
          [`last ${half}`, late.n, fmt.mb(late.median), fmt.mb(late.p90), fmt.mb(late.max)],
        ],
      ),
      '',
      `Peak RSS (VmHWM) over the whole run: **${fmt.mb(hwmMb)}**; median RSS last half ÷ first half: ${fmt.n(growth, 2)}.`,
    ];
    return {
      name: 'memory',
      title: '4. Worker memory',
      lines,
      goals: [
        { what: 'worker peak RSS', value: fmt.mb(hwmMb), goal: '≤ 300 MB', pass: hwmMb <= 300 },
        {
          what: 'RSS flat (median last half ÷ first half)',
          value: fmt.n(growth, 2),
          goal: '≤ 1.15',
          pass: growth <= 1.15,
        },
      ],
    };
  } finally {
    await b.close();
  }
}

if (isMain(import.meta.url)) printResult(await run());
