/**
 * 1. Rate-limit efficiency: how close nightshift's shared limiter gets to the API's limit without a 429.
 * The fake enforces a strict sliding window (scaled down to 50 requests / 5 s, 5 s lockout) with
 * 100–300 ms latency; 1 and 4 worker processes at concurrency 64 work a batch of ~30 s, with the
 * default margin (2.5% of the window) and with --rate-margin 0.1; then the API's own 150 / 10 s with
 * 1 and 4 processes. The fake runs in this process: it only sees 10–15 requests/s here, so its CPU
 * cannot distort the figures.
 */
import { API_RATE_LIMIT } from '../src/models.js';
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
  spawnCli,
  table,
} from './lib.js';
import { defaultMarginMs } from '../src/billing/rate-limiter.js';

const COUNT = 50;
const WINDOW_MS = 5000;

/** A limit the fake enforces and the workers are told. */
interface Limit {
  count: number;
  windowMs: number;
}

const limitPerS = (l: Limit) => (l.count / l.windowMs) * 1000;
const limitName = (l: Limit) => `${l.count}/${l.windowMs / 1000} s`;

export interface RateFigures {
  limit: Limit;
  workers: number;
  marginS: number;
  requests: number;
  rateLimited: number;
  maxInWindow: number;
  /** COUNT / mean(t[j+COUNT] − t[j]): how fast a slot is reused once freed. Independent of burst shape. */
  recycleRate: number;
  /** (N − 1) / (last − first): the naive span rate, inflated by the first window's burst. */
  spanRate: number;
  /** (N − COUNT) / (last − first): the span rate without the first window's free burst. */
  steadyRate: number;
  wallMs: number;
  /** How long the first window's 50 accepted requests took to arrive (they are granted within a few ms). */
  firstBurstMs: number;
}

/** Rate figures from arrival times; see RateFigures for why there are three. */
export function rateFromArrivals(arrivalsIn: readonly number[], count: number) {
  const a = [...arrivalsIn].sort((x, y) => x - y);
  const n = a.length;
  const span = a[n - 1]! - a[0]!;
  let gaps = 0;
  for (let j = 0; j + count < n; j++) gaps += a[j + count]! - a[j]!;
  const meanGap = gaps / Math.max(1, n - count);
  return {
    recycleRate: (count / meanGap) * 1000,
    spanRate: ((n - 1) / span) * 1000,
    steadyRate: ((n - count) / span) * 1000,
  };
}

interface RunSpec {
  limit: Limit;
  workers: number;
  marginS: number | null;
  jobs: number;
  concurrency: number;
}

async function one({ limit, workers, marginS, jobs, concurrency }: RunSpec): Promise<RateFigures> {
  const { count, windowMs } = limit;
  // The fake's debug log line gives each request's status and duration: arrival = finish − duration.
  const accepted: number[] = [];
  const logger = {
    info() {},
    warn() {},
    debug(o: object) {
      const r = o as { status?: number; ms?: number };
      if (r.status === 200 && typeof r.ms === 'number') accepted.push(Date.now() - r.ms);
    },
  };
  const mock = await startMockApi({
    latencyMs: [100, 300],
    rateLimit: { count, windowMs, lockoutMs: 5000 },
    logger,
  });
  const b = await benchSetup('rate', 'rl', mock);
  const { prefix, tmp, ctx } = b;
  try {
    await enqueueLines(ctx, prompts(jobs, `rate-${count}-${workers}-${marginS}`), { batch: 'rl', dir: tmp.dir });
    const env = childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY });
    const args = [
      'work',
      '--exit-when-idle',
      '--concurrency',
      String(concurrency),
      '--rate',
      `${count}/${windowMs / 1000}`,
      '--lockout',
      '5',
      '--queue',
      'rl',
      '--prefix',
      prefix,
      '--out',
      tmp.dir,
      '--redis',
      redisUrl(),
      '--log-level',
      'warn',
      ...(marginS === null ? [] : ['--rate-margin', String(marginS)]),
    ];
    const t0 = Date.now();
    const children = Array.from({ length: workers }, () => spawnCli(args, env));
    // Ideal time is jobs ÷ the limit; allow three times that plus start-up.
    const ideal = (jobs / limitPerS(limit)) * 1000;
    await Promise.all(children.map((c, i) => finish(c, ideal * 3 + 30_000, `rate worker ${i + 1}/${workers}`)));
    const wallMs = Date.now() - t0;
    const counts = await ctx.state.counts('rl');
    if (counts.succeeded !== jobs) throw new Error(`rate-limit run ended with ${JSON.stringify(counts)}`);
    const r = rateFromArrivals(accepted, count);
    const sorted = [...accepted].sort((x, y) => x - y);
    return {
      limit,
      workers,
      marginS: marginS ?? defaultMarginMs(windowMs) / 1000,
      requests: mock.stats.total,
      rateLimited: mock.stats.rateLimited,
      maxInWindow: mock.stats.maxInWindow(windowMs),
      ...r,
      wallMs,
      firstBurstMs: sorted[count - 1]! - sorted[0]!,
    };
  } finally {
    await b.close();
  }
}

export async function run(): Promise<BenchResult> {
  const jobs = envInt('BENCH_RATE_JOBS', 300);
  const realJobs = envInt('BENCH_RATE_REAL_JOBS', 450);
  const concurrency = envInt('BENCH_RATE_CONCURRENCY', 64);
  const scaled: Limit = { count: COUNT, windowMs: WINDOW_MS };
  const real: Limit = { ...API_RATE_LIMIT };
  const specs: RunSpec[] = [
    ...[1, 4].flatMap((workers) =>
      [null, 0.1].map((marginS) => ({ limit: scaled, workers, marginS, jobs, concurrency })),
    ),
    ...[1, 4].map((workers) => ({ limit: real, workers, marginS: null, jobs: realJobs, concurrency })),
  ];
  // BENCH_RATE_WORKERS=4 runs only the runs with that many worker processes.
  const only = process.env.BENCH_RATE_WORKERS?.split(',').map(Number);
  const runs: RateFigures[] = [];
  for (const spec of specs.filter((s) => !only || only.includes(s.workers))) {
    const f = await one(spec);
    process.stdout.write(
      `  rate-limit ${limitName(f.limit)}: ${f.workers} worker(s), margin ${f.marginS}s: ${fmt.n(f.recycleRate, 2)}/s, ${f.rateLimited} × 429\n`,
    );
    runs.push(f);
  }
  const ratio = (f: RateFigures, x: number) => x / limitPerS(f.limit);
  const lines = [
    `Fake: strict sliding window (${limitName(scaled)}, limit ${limitPerS(scaled)}/s, then the API's ${limitName(real)}, limit ${limitPerS(real)}/s), 5 s lockout, latency 100–300 ms, in the bench process. ` +
      `${jobs} jobs per run at ${limitName(scaled)}, ${realJobs} at ${limitName(real)}; worker processes at concurrency ${concurrency}, \`--rate\` set to the fake's limit.`,
    '',
    ...table(
      [
        'limit',
        'workers',
        'margin',
        'requests',
        '429s',
        'first window arrived over',
        'slot-reuse rate',
        '÷ limit',
        'steady span rate ÷ limit',
        'naive span rate ÷ limit',
        'wall',
      ],
      runs.map((f) => [
        limitName(f.limit),
        f.workers,
        `${f.marginS} s`,
        f.requests,
        f.rateLimited,
        `${f.firstBurstMs} ms`,
        `${fmt.n(f.recycleRate, 2)}/s`,
        `**${fmt.n(ratio(f, f.recycleRate), 3)}**`,
        fmt.n(ratio(f, f.steadyRate), 3),
        fmt.n(ratio(f, f.spanRate), 3),
        fmt.s(f.wallMs),
      ]),
    ),
    '',
    `Ceiling with a margin m: W/(W+m) = ${fmt.n(WINDOW_MS / (WINDOW_MS + defaultMarginMs(WINDOW_MS)), 3)} (the default m = 2.5% of the window), ${fmt.n(5 / 5.1, 3)} (m = 0.1 s at 5 s).`,
    'Rates are computed over the accepted (200) arrivals only. Slot-reuse rate = COUNT / mean(t[j+COUNT] − t[j]) over the arrivals: the achieved steady-state rate, whatever the burst shape. ' +
      'The steady span rate (N − COUNT)/(last − first) is exact when arrivals come in whole-window bursts; ' +
      "the naive (N − 1)/(last − first) counts the first window's free burst and overstates the rate.",
  ];
  const goals = runs.flatMap((f) => {
    const what = `${limitName(f.limit)}, ${f.workers} worker(s), margin ${f.marginS} s`;
    return [
      {
        what: `rate ÷ limit, ${what}`,
        value: fmt.n(ratio(f, f.recycleRate), 3),
        goal: '≥ 0.97',
        pass: ratio(f, f.recycleRate) >= 0.97,
      },
      { what: `429s, ${what}`, value: String(f.rateLimited), goal: '0', pass: f.rateLimited === 0 },
    ];
  });
  return { name: 'rate-limit', title: '1. Rate-limit efficiency', lines, goals };
}

if (isMain(import.meta.url)) printResult(await run());
