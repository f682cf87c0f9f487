/**
 * 8. Object storage: the same `nightshift run --mock` batch written to a folder and to
 * `--out s3://bench/night` on s3rver (loopback, behind a proxy that counts requests), then enqueued
 * again on a fresh queue against each. Shows what an object store costs per job (requests of each
 * kind) and that the rerun lists the batch once instead of asking per image.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
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
  spawnCli,
  table,
  type BenchResult,
} from './lib.js';
import { forward, S3RVER_CREDENTIALS, startS3 } from '../test/helpers/s3.js';
import { tempDir } from '../test/helpers/temp.js';

type Counts = Record<'PUT' | 'GET' | 'HEAD' | 'LIST' | 'DELETE', number>;
const zero = (): Counts => ({ PUT: 0, GET: 0, HEAD: 0, LIST: 0, DELETE: 0 });

/** A pass-through proxy that counts S3 requests by kind (a GET of a bucket with `list-type` is a LIST). */
async function countingProxy(target: string) {
  const up = new URL(target);
  let counts = zero();
  const server = createServer((req, res) => {
    const kind = req.method === 'GET' && /[?&]list-type=/.test(req.url ?? '') ? 'LIST' : (req.method as keyof Counts);
    if (kind in counts) counts[kind]++;
    if (process.env.BENCH_S3_TRACE) process.stderr.write(`${req.method} ${req.url}\n`);
    forward(req, res, up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    take: () => {
      const c = counts;
      counts = zero();
      return c;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

interface Figures {
  what: string;
  ms: number;
  counts: Counts | null;
}

async function cli(args: string[], env: NodeJS.ProcessEnv, what: string): Promise<number> {
  const r = await finish(spawnCli([...args, '--log-level', 'warn'], env), 600_000, what);
  return r.ms;
}

export async function run(): Promise<BenchResult> {
  const n = envInt('BENCH_S3_JOBS', 300);
  const tmp = await tempDir('nsbench-s3-');
  const redis = new Redis(redisUrl());
  await mkdir(join(tmp.dir, 's3'));
  const s3 = await startS3(S3rver, { dir: join(tmp.dir, 's3'), buckets: ['bench'] });
  const proxy = await countingProxy(s3.url);
  const prefix = benchPrefix('s3');
  const env = childEnv({
    NIGHTSHIFT_PREFIX: prefix,
    AWS_ENDPOINT_URL_S3: proxy.url,
    AWS_REGION: 'us-east-1',
    ...S3RVER_CREDENTIALS,
  });
  try {
    const file = join(tmp.dir, 'prompts.txt');
    await writeFile(file, `${prompts(n, 's3 bench').join('\n')}\n`);
    const folder = join(tmp.dir, 'out');
    const figures: Figures[] = [];
    // A batch of its own per output: a batch's numbering and done records are shared by every output.
    const runArgs = ['run', file, '--mock', '--rate', '100000/1', '--concurrency', '32'];
    const enqArgs = ['enqueue', file, '--mock'];
    for (const [what, out] of [
      ['folder', folder],
      ['s3://bench/night', 's3://bench/night'],
    ] as const) {
      const s3Out = out.startsWith('s3://');
      const tag = s3Out ? 's3' : 'dir';
      const batch = ['--batch', tag, '--out', out];
      proxy.take();
      const ms = await cli([...runArgs, ...batch, '--queue', `run-${tag}`], env, `run ${what}`);
      figures.push({ what: `run, report included: ${what}`, ms, counts: s3Out ? proxy.take() : null });
      const again = await cli([...enqArgs, ...batch, '--queue', `again-${tag}`], env, what);
      figures.push({ what: `enqueue again, fresh queue: ${what}`, ms: again, counts: s3Out ? proxy.take() : null });
    }
    const per = (c: Counts | null, k: keyof Counts) => (c ? fmt.n(c[k] / n, 2) : '–');
    const lines = [
      `${n} jobs, \`--mock\` (no API latency), concurrency 32; s3rver on loopback behind a counting proxy; wall time of the child from spawn to exit. S3 requests are per job.`,
      '',
      ...table(
        ['what', 'wall time', 'jobs/s', 'PUT', 'GET', 'HEAD', 'LIST (whole batch)'],
        figures.map((f) => [
          f.what,
          fmt.s(f.ms),
          f.what.startsWith('run') ? fmt.n(n / (f.ms / 1000)) : '–',
          per(f.counts, 'PUT'),
          per(f.counts, 'GET'),
          per(f.counts, 'HEAD'),
          f.counts ? f.counts.LIST : '–',
        ]),
      ),
    ];
    const rerun = figures[3]!.counts!;
    const goals = [
      {
        what: 'S3 rerun: LIST requests for the whole batch',
        value: String(rerun.LIST),
        goal: `≤ ${Math.ceil(n / 1000)}`,
        pass: rerun.LIST <= Math.ceil(n / 1000),
      },
      { what: 'S3 rerun: PUT requests', value: String(rerun.PUT), goal: '0', pass: rerun.PUT === 0 },
    ];
    for (const f of figures) process.stdout.write(`  s3: ${f.what}: ${fmt.s(f.ms)} ${JSON.stringify(f.counts)}\n`);
    return { name: 's3', title: '9. Object storage (--out s3://…)', lines, goals };
  } finally {
    await proxy.close();
    await s3.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    await tmp.cleanup();
  }
}

if (isMain(import.meta.url)) printResult(await run());
