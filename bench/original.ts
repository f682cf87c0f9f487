/**
 * 5. The original script's approach against nightshift, on the same fake: 2 s latency and the
 * default 150/10 limit enforced. The original sends one v1 request at a time and writes each image
 * when it comes back; it runs here, in the bench process, over a smaller count and its
 * per-image time is extrapolated to the full count. nightshift enqueues the full count (same v1
 * engine) and one `work --exit-when-idle` process at its defaults works it; its time is the wall
 * time from spawning the worker to its exit, start-up and idle detection included.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { startMockApi } from '../src/mock-api/server.js';
import {
  BENCH_KEY,
  type BenchResult,
  benchSetup,
  childEnv,
  completedSpan,
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

/** The tutorial's script, once per prompt, in sequence: any non-200 stops it. */
async function original(apiUrl: string, list: string[], outDir: string): Promise<number> {
  await mkdir(outDir, { recursive: true });
  const t0 = Date.now();
  for (const [n, text] of list.entries()) {
    const res = await request(`${apiUrl}/v1/generation/stable-diffusion-v1-6/text-to-image`, {
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

export async function run(): Promise<BenchResult> {
  const total = envInt('BENCH_ORIGINAL_PROMPTS', 60);
  const seqCount = Math.min(total, envInt('BENCH_ORIGINAL_SEQUENTIAL', 8));
  const latencyMs = envInt('BENCH_ORIGINAL_LATENCY_MS', 2000);
  const mock = await startMockApi({ latencyMs, rateLimit: { count: 150, windowMs: 10_000, lockoutMs: 60_000 } });
  const b = await benchSetup('orig', 'orig', mock);
  const { prefix, tmp, ctx } = b;
  try {
    const list = prompts(total, 'original');
    const seqMs = await original(mock.url, list.slice(0, seqCount), join(tmp.dir, 'original'));
    const perImage = seqMs / seqCount;

    await enqueueLines(ctx, list, { batch: 'orig', dir: tmp.dir, defaults: { model: 'stable-diffusion-v1-6' } });
    const child = spawnCli(
      [
        'work',
        '--exit-when-idle',
        '--queue',
        'orig',
        '--prefix',
        prefix,
        '--out',
        tmp.dir,
        '--redis',
        redisUrl(),
        '--log-level',
        'warn',
      ],
      childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY }),
    );
    const r = await finish(child, 120_000, 'nightshift worker');
    const counts = await ctx.state.counts('orig');
    if (counts.succeeded !== total) throw new Error(`nightshift run ended with ${JSON.stringify(counts)}`);
    const span = await completedSpan(ctx.queue);
    const seqTotal = perImage * total;
    const speedup = seqTotal / r.ms;
    const lines = [
      `Fake: ${latencyMs} ms per image, 150/10 s enforced. ${total} prompts, v1 engine stable-diffusion-v1-6 on both sides; ` +
        `the sequential script ran ${seqCount} of them and its time is extrapolated (${seqCount < total ? 'per-image time × ' + total : 'measured'}).`,
      '',
      ...table(
        ['approach', `time for ${total} images`, 'per image', 'speed-up'],
        [
          [
            `original script (sequential; ${seqCount} measured)`,
            `${fmt.s(seqTotal)}${seqCount < total ? ' (extrapolated)' : ''}`,
            fmt.s(perImage),
            '1×',
          ],
          [
            'nightshift, 1 worker, defaults (wall: spawn → exit)',
            fmt.s(r.ms),
            fmt.s(r.ms / total),
            `**${fmt.n(speedup)}×**`,
          ],
          [
            'nightshift, first job start → last job finish',
            fmt.s(span.spanMs),
            fmt.s(span.spanMs / total),
            `${fmt.n(seqTotal / span.spanMs)}×`,
          ],
        ],
      ),
      '',
      `429s: ${mock.stats.rateLimited}. The wall time includes the worker's start-up (tsx) and up to 1 s of idle detection.`,
    ];
    return {
      name: 'original',
      title: '5. Against the original script',
      lines,
      goals: [
        {
          what: `speed-up over the sequential script (${total} images)`,
          value: `${fmt.n(speedup)}×`,
          goal: 'report',
          pass: speedup > 1,
        },
      ],
    };
  } finally {
    await b.close();
  }
}

if (isMain(import.meta.url)) printResult(await run());
