/**
 * 6. Hostile answers: (a) peak RSS of one `nightshift work` process whose four jobs get 512 MiB
 * answers (streamed without Content-Length; each job tries 5 times), against a baseline in the same
 * run where the same four jobs get small garbage answers; (b) what redacting secrets costs per log
 * line, against serializing the line.
 */
import { randomBytes } from 'node:crypto';
import { startMockApi } from '../src/mock-api/server.js';
import type { Fault } from '../src/mock-api/types.js';
import { createRedactor } from '../src/secrets.js';
import {
  BENCH_KEY,
  type BenchResult,
  benchSetup,
  childEnv,
  enqueueLines,
  envInt,
  fmt,
  isMain,
  printResult,
  prompts,
  redisUrl,
  sampleMemory,
  spawnCli,
  table,
} from './lib.js';

async function workerPeak(fault: Fault, tag: string): Promise<{ hwmMb: number; ms: number; requests: number }> {
  const mock = await startMockApi({ fault: ({ model }) => (model === '' ? undefined : fault) });
  const queue = `hostile-${tag}`;
  const b = await benchSetup(queue, queue, mock);
  try {
    await enqueueLines(b.ctx, prompts(4, tag), { batch: 'hostile', dir: b.tmp.dir, defaults: { model: 'core' } });
    const child = spawnCli(
      [
        'work',
        '--exit-when-idle',
        '--concurrency',
        '4',
        '--rate',
        '100000/1',
        '--backoff',
        '0.01',
        '--breaker-threshold',
        '1000',
        '--queue',
        queue,
        '--prefix',
        b.prefix,
        '--out',
        b.tmp.dir,
        '--redis',
        redisUrl(),
        '--log-level',
        'warn',
      ],
      childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY }),
    );
    const mem = sampleMemory(child.proc.pid!, 20);
    const kill = setTimeout(() => child.proc.kill('SIGKILL'), 300_000);
    const r = await child.result;
    clearTimeout(kill);
    const { hwmMb } = mem.stop();
    const counts = await b.ctx.state.counts('hostile');
    if (r.signal || counts.succeeded !== 0 || counts.pending !== 0)
      throw new Error(`hostile worker ended with ${r.signal ?? r.code}, ${JSON.stringify(counts)}`);
    return { hwmMb, ms: r.ms, requests: mock.stats.total };
  } finally {
    await b.close();
  }
}

/** Nanoseconds per call of `fn` over `lines`, best of 5 rounds. */
function nsPerLine(lines: string[], fn: (s: string) => unknown): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (const l of lines) fn(l);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / lines.length);
  }
  return best;
}

function redactionCost(n: number) {
  const key = `sk-${randomBytes(30).toString('base64url').slice(0, 40)}`;
  const redact = createRedactor([key, 'redis-password-0123', 'https-hook-token-abcdef']);
  const objs = prompts(n, 'log').map((prompt, i) => ({
    level: 30,
    time: 1_700_000_000_000 + i,
    pid: 4242,
    jobId: `b:${i.toString(16).padStart(16, '0')}`,
    batch: 'b',
    msg: `image saved for ${prompt}`,
    file: `images/${String(i).padStart(5, '0')}-a-lighthouse-on-a-cliff-0123abcd.png`,
  }));
  const lines = objs.map((o) => JSON.stringify(o));
  const serialize = nsPerLine(
    objs.map((_, i) => String(i)),
    (i) => JSON.stringify(objs[Number(i)]),
  );
  const clean = nsPerLine(lines, redact);
  const dirty = lines.map((l, i) => (i % 10 === 0 ? l.replace('image saved', `echo Bearer ${key}`) : l));
  const withHits = nsPerLine(dirty, redact);
  return { serialize, clean, withHits, bytes: lines.reduce((a, l) => a + l.length, 0) / lines.length };
}

export async function run(): Promise<BenchResult> {
  const baseline = await workerPeak({ kind: 'png-garbage' }, 'small');
  const huge = await workerPeak({ kind: 'huge', chunked: true }, 'huge');
  const cost = redactionCost(envInt('BENCH_REDACT_LINES', 20_000));
  const ratio = huge.hwmMb / baseline.hwmMb;
  const lines = [
    'One `nightshift work` process, four jobs, concurrency 4, 5 attempts each; the response cap is the default 64 MiB.',
    '',
    ...table(
      ['answers', 'requests', 'wall', 'peak RSS (VmHWM)'],
      [
        ['PNG magic + 4 KiB garbage (baseline)', baseline.requests, fmt.s(baseline.ms), fmt.mb(baseline.hwmMb)],
        ['512 MiB streamed, no Content-Length', huge.requests, fmt.s(huge.ms), fmt.mb(huge.hwmMb)],
      ],
    ),
    '',
    `Peak RSS with 512 MiB answers ÷ baseline: ${fmt.n(ratio, 2)} (the cap costs one 64 MiB body plus 16 MiB per other body at a time).`,
    '',
    ...table(
      ['per log line (' + fmt.n(cost.bytes, 0) + ' chars, 3 secrets)', 'ns', '÷ JSON.stringify'],
      [
        ['JSON.stringify of the line (baseline)', fmt.n(cost.serialize, 0), '1.00'],
        ['redact, no secret in the line', fmt.n(cost.clean, 0), fmt.n(cost.clean / cost.serialize, 2)],
        ['redact, a key in 1 line of 10', fmt.n(cost.withHits, 0), fmt.n(cost.withHits / cost.serialize, 2)],
      ],
    ),
  ];
  const hugeBytes = huge.hwmMb * 2 ** 20;
  return {
    name: 'hostile',
    title: '6. Hostile answers',
    lines,
    goals: [
      {
        what: 'worker peak RSS, four 512 MiB answers',
        value: fmt.mb(huge.hwmMb),
        goal: '< 400 MB',
        pass: hugeBytes < 400e6,
      },
    ],
  };
}

if (isMain(import.meta.url)) printResult(await run());
