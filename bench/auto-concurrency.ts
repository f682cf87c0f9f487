/**
 * 8. `--concurrency auto` (the default) against the API's real limit, 150/10 s, at three latencies
 * of the fake: 2 s (Core-like), 8 s (Ultra-like) and 30 s (a slow night). One `nightshift work
 * --exit-when-idle` process at its defaults works a freshly enqueued batch each time; the figures are
 * the image requests per second it kept up while sending ÷ the limit, the most requests the fake held
 * at once, and the worker's peak RSS. Sizes: BENCH_AUTO_JOBS (600, or more at long latencies), BENCH_AUTO_LATENCIES (2000,8000,30000).
 */
import { API_RATE_LIMIT } from '../src/models.js';
import type { MockRequestRecord } from '../src/mock-api/types.js';
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

const LIMIT = API_RATE_LIMIT;
const LIMIT_RATE = LIMIT.count / (LIMIT.windowMs / 1000);

interface Figures {
  latencyMs: number;
  jobs: number;
  wallMs: number;
  /** Image requests per second from the first request to the last. */
  rate: number;
  /** The most image requests in any window of the limit, as a rate: what it reached once ramped up. */
  bestWindowRate: number;
  peakInFlight: number;
  hwmMb: number;
  rateLimited: number;
}

/** The most requests received and not yet answered at any moment. */
export function peakInFlight(requests: readonly MockRequestRecord[]): number {
  const events: Array<[number, number]> = [];
  for (const r of requests) {
    events.push([r.arrival, 1]);
    events.push([r.finishedAt ?? Infinity, -1]);
  }
  // At equal times an answer leaves before the next request counts.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (now += d));
  return peak;
}

async function measure(latencyMs: number, jobs: number): Promise<Figures> {
  const mock = await startMockApi({ latencyMs, rateLimit: { ...LIMIT, lockoutMs: 60_000 } });
  const b = await benchSetup('auto', 'auto', mock);
  try {
    await enqueueLines(b.ctx, prompts(jobs, `auto ${latencyMs}`), { batch: 'auto', dir: b.tmp.dir });
    const where = ['--queue', 'auto', '--prefix', b.prefix, '--out', b.tmp.dir, '--redis', redisUrl()];
    const child = spawnCli(
      ['work', '--exit-when-idle', ...where, '--log-level', 'warn'],
      childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY }),
    );
    const mem = sampleMemory(child.proc.pid!, 250);
    const r = await finish(child, 30 * 60_000, `worker at ${latencyMs} ms`);
    const { hwmMb } = mem.stop();
    const gens = mock.stats.requests.filter((q) => q.generation !== null);
    if (gens.length < jobs) throw new Error(`the fake received ${gens.length} image requests for ${jobs} jobs`);
    const arrivals = gens.map((q) => q.arrival);
    const first = Math.min(...arrivals);
    const last = Math.max(...arrivals);
    const rate = ((gens.length - 1) / (last - first)) * 1000;
    return {
      latencyMs,
      jobs,
      wallMs: r.ms,
      rate,
      bestWindowRate: (mock.stats.maxInWindow(LIMIT.windowMs) / LIMIT.windowMs) * 1000,
      peakInFlight: peakInFlight(gens),
      hwmMb,
      rateLimited: mock.stats.rateLimited,
    };
  } finally {
    await b.close();
  }
}

export async function run(): Promise<BenchResult> {
  const jobs = envInt('BENCH_AUTO_JOBS', 600);
  const latencies = (process.env.BENCH_AUTO_LATENCIES ?? '2000,8000,30000').split(',').map(Number);
  const figures: Figures[] = [];
  for (const latencyMs of latencies) {
    // Enough jobs for the ramp-up to be a small part: at least 2.5 latencies' worth at the limit.
    const f = await measure(latencyMs, Math.max(jobs, Math.ceil((LIMIT_RATE * latencyMs * 2.5) / 1000)));
    process.stdout.write(
      `  auto: ${latencyMs} ms: ${fmt.n(f.rate / LIMIT_RATE, 3)} of the limit, peak ${f.peakInFlight} in flight\n`,
    );
    figures.push(f);
  }
  const lines = [
    `Fake: ${LIMIT.count}/${LIMIT.windowMs / 1000} s enforced (${LIMIT_RATE} images/s). At least ${jobs} jobs per latency (2.5 latencies' worth at the limit), one worker process at its defaults ` +
      '(`--concurrency auto`, `--max-concurrency 256`). Rate = image requests per second from the first request to the last (the ramp-up included); ' +
      'best 10 s = the most requests in any 10 s window, once ramped up.',
    '',
    ...table(
      [
        'latency',
        'jobs',
        'images/s',
        '÷ limit',
        'best 10 s ÷ limit',
        'peak in flight',
        'Little’s law needs',
        'worker peak RSS',
        '429s',
        'wall',
      ],
      figures.map((f) => [
        fmt.s(f.latencyMs),
        f.jobs,
        fmt.n(f.rate, 2),
        `**${fmt.n(f.rate / LIMIT_RATE, 3)}**`,
        fmt.n(f.bestWindowRate / LIMIT_RATE, 3),
        f.peakInFlight,
        Math.ceil((LIMIT_RATE * f.latencyMs) / 1000),
        fmt.mb(f.hwmMb),
        f.rateLimited,
        fmt.s(f.wallMs),
      ]),
    ),
    '',
    'Little’s law needs = limit × latency requests in flight to use every slot; `--max-concurrency` (256 by default) caps a worker below the 450 that 30 s needs.',
  ];
  const goals = figures.map((f) => ({
    what: `images/s ÷ limit at ${fmt.s(f.latencyMs)} latency`,
    value: fmt.n(f.rate / LIMIT_RATE, 3),
    goal: 'report',
    pass: f.rateLimited === 0,
  }));
  return { name: 'auto-concurrency', title: '8. Auto concurrency', lines, goals };
}

if (isMain(import.meta.url)) printResult(await run());
