/**
 * 5. The original script's approach against one `nightshift run` at its defaults, on the same fake:
 * 8 s per image (Ultra-like) and the API's real limit, 150/10 s, enforced. The original sends one
 * v1 request at a time and writes each image when it comes back; it runs here, in the bench process,
 * over a few prompts and its per-image time is extrapolated to the full count. nightshift gets the
 * full file (same v1 engine) with `run`, which enqueues, works and writes the report and gallery;
 * its figures are the wall time from spawning `run` to its exit, the delay until the fake receives
 * the first image request, and the time from the last answer to the exit.
 * Sizes: BENCH_ORIGINAL_PROMPTS (2000), BENCH_ORIGINAL_LATENCY_MS (8000), BENCH_ORIGINAL_SEQUENTIAL (2).
 */
import { API_RATE_LIMIT } from '../src/models.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { startMockApi } from '../src/mock-api/server.js';
import type { MockRequestRecord } from '../src/mock-api/types.js';
import {
  BENCH_KEY,
  type BenchResult,
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
} from './lib.js';
import { tempDir } from '../test/helpers/temp.js';
import { Redis } from 'ioredis';

const LIMIT = API_RATE_LIMIT;
const ENGINE = 'stable-diffusion-v1-6';

/** The tutorial's script, once per prompt, in sequence: any non-200 stops it. */
async function original(apiUrl: string, list: string[], outDir: string): Promise<number> {
  await mkdir(outDir, { recursive: true });
  const t0 = Date.now();
  for (const [n, text] of list.entries()) {
    const res = await request(`${apiUrl}/v1/generation/${ENGINE}/text-to-image`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${BENCH_KEY}` },
      body: JSON.stringify({
        text_prompts: [{ text }],
        cfg_scale: 7,
        height: 1024,
        width: 1024,
        samples: 1,
        steps: 30,
      }),
    });
    const body = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`Non-200 response: ${body}`);
    const data = JSON.parse(body) as { artifacts: Array<{ base64: string }> };
    for (const [i, a] of data.artifacts.entries())
      await writeFile(join(outDir, `v1_txt2img_${n}_${i}.png`), Buffer.from(a.base64, 'base64'));
  }
  return Date.now() - t0;
}

/** When the image requests arrived and were answered, relative to the start of `run`. */
function requestTimes(requests: readonly MockRequestRecord[], startedAt: number) {
  const gens = requests.filter((r) => r.generation !== null);
  let first = Infinity;
  let lastArrival = 0;
  let lastAnswer = 0;
  for (const r of gens) {
    first = Math.min(first, r.arrival);
    lastArrival = Math.max(lastArrival, r.arrival);
    lastAnswer = Math.max(lastAnswer, r.finishedAt ?? 0);
  }
  const sendingRate = ((gens.length - 1) / (lastArrival - first)) * 1000;
  return { count: gens.length, firstMs: first - startedAt, lastAnswer, sendingRate };
}

export async function run(): Promise<BenchResult> {
  const total = envInt('BENCH_ORIGINAL_PROMPTS', 2000);
  const seqCount = Math.min(total, envInt('BENCH_ORIGINAL_SEQUENTIAL', 2));
  const latencyMs = envInt('BENCH_ORIGINAL_LATENCY_MS', 8000);
  const mock = await startMockApi({ latencyMs, rateLimit: { ...LIMIT, lockoutMs: 60_000 } });
  const prefix = benchPrefix('orig');
  const tmp = await tempDir('nsbench-orig-');
  try {
    const list = prompts(total, 'original');
    const seqMs = await original(mock.url, list.slice(0, seqCount), join(tmp.dir, 'original'));
    const perImage = seqMs / seqCount;
    mock.stats.requests.length = 0;

    const file = join(tmp.dir, 'night.txt');
    await writeFile(file, `${list.join('\n')}\n`);
    const args = ['run', file, '--model', ENGINE, '--max-jobs', String(Math.max(10_000, total))];
    const where = ['--queue', 'orig', '--prefix', prefix, '--out', join(tmp.dir, 'out'), '--redis', redisUrl()];
    const child = spawnCli(
      [...args, ...where, '--log-level', 'warn'],
      childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY }),
    );
    const mem = sampleMemory(child.proc.pid!, 250);
    const r = await finish(child, 30 * 60_000, 'nightshift run');
    const exitAt = child.startedAt + r.ms;
    const { hwmMb } = mem.stop();
    const t = requestTimes(mock.stats.requests, child.startedAt);
    if (t.count !== total) throw new Error(`the fake received ${t.count} image requests for ${total} prompts`);
    return report(
      { total, seqCount, latencyMs, perImage, wallMs: r.ms, hwmMb, t, tailMs: exitAt - t.lastAnswer },
      mock,
    );
  } finally {
    await mock.close();
    const redis = new Redis(redisUrl());
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    await tmp.cleanup();
  }
}

interface Figures {
  total: number;
  seqCount: number;
  latencyMs: number;
  perImage: number;
  wallMs: number;
  hwmMb: number;
  t: ReturnType<typeof requestTimes>;
  tailMs: number;
}

function report(f: Figures, mock: { stats: { rateLimited: number } }): BenchResult {
  const seqTotal = f.perImage * f.total;
  const speedup = seqTotal / f.wallMs;
  const limitRate = LIMIT.count / (LIMIT.windowMs / 1000);
  const ceiling = seqTotal / ((f.total / limitRate) * 1000 + f.latencyMs);
  const lines = [
    `Fake: ${f.latencyMs} ms per image, ${LIMIT.count}/${LIMIT.windowMs / 1000} s enforced. ${f.total} prompts, v1 engine ${ENGINE} on both sides; ` +
      `the sequential script ran ${f.seqCount} of them and its time is extrapolated (per-image time × ${f.total}). ` +
      `nightshift: one \`nightshift run\` at its defaults (auto concurrency), spawn to exit.`,
    '',
    ...table(
      ['approach', `time for ${f.total} images`, 'images/s', 'speed-up'],
      [
        [
          `original script (sequential; ${f.seqCount} measured)`,
          `${fmt.s(seqTotal)} (extrapolated)`,
          fmt.n(1000 / f.perImage, 3),
          '1×',
        ],
        [
          'nightshift run, defaults (spawn → exit)',
          fmt.s(f.wallMs),
          fmt.n((f.total / f.wallMs) * 1000, 2),
          `**${fmt.n(speedup)}×**`,
        ],
        ['the limit allows (every slot used, plus one latency)', '', fmt.n(limitRate, 2), `${fmt.n(ceiling)}×`],
      ],
    ),
    '',
    ...table(
      ['figure', 'value'],
      [
        ['first image request after `run` started', fmt.s(f.t.firstMs)],
        ['last answer → `run` exited (report, gallery, shutdown)', fmt.s(f.tailMs)],
        ['rate while sending (first to last request) ÷ limit', fmt.n(f.t.sendingRate / limitRate, 3)],
        ['429s', String(mock.stats.rateLimited)],
        ['peak RSS of the `run` process (VmHWM)', fmt.mb(f.hwmMb)],
      ],
    ),
  ];
  return {
    name: 'original',
    title: '5. Against the original script',
    lines,
    goals: [
      {
        what: `speed-up over the sequential script (${f.total} images)`,
        value: `${fmt.n(speedup)}×`,
        goal: '≥ 100×',
        pass: speedup >= 100,
      },
      {
        what: 'first request after `run` started',
        value: fmt.s(f.t.firstMs),
        goal: '≤ 2 s',
        pass: f.t.firstMs <= 2000,
      },
      { what: 'last answer → exit', value: fmt.s(f.tailMs), goal: '≤ 3 s', pass: f.tailMs <= 3000 },
    ],
  };
}

if (isMain(import.meta.url)) printResult(await run());
