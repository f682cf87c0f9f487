/**
 * Redis Cluster: what a 3-master cluster (3 replicas, on this machine) costs against one Redis, and
 * what a failover costs. (1) The same batch through one `work --exit-when-idle` process on one Redis
 * and on the cluster: jobs/s from BullMQ's timestamps, zero-latency fake, limit out of the way.
 * (2) A batch on the cluster with a 200 ms fake; after a quarter, the master holding the queue's
 * slot is SIGKILLed: how long until the replica took over, how long `status` takes before and
 * during the failover, and what was billed twice.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { createQueue } from '../src/queue/queue.js';
import { clusterTarget } from '../src/redis/cluster.js';
import { createRedis } from '../src/redis/connect.js';
import { queuePrefix } from '../src/redis/keys.js';
import { clusterUnsupported, startRedisCluster, type TestRedisCluster } from '../test/helpers/redis-cluster.js';
import {
  BENCH_KEY,
  benchPrefix,
  type BenchResult,
  childEnv,
  cleanupPrefix,
  completedSpan,
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
import { tempDir } from '../test/helpers/temp.js';

const JOBS = envInt('BENCH_CLUSTER_JOBS', 1000);
const CONCURRENCY = 16;
const QUEUE = 'clb';

/** How a run reaches Redis: the flags for the CLI and the target for our own connection. */
interface Target {
  what: string;
  flags: string[];
  url: string;
  cluster: boolean;
}

async function enqueue(t: Target, env: NodeJS.ProcessEnv, dir: string, lines: string[]): Promise<void> {
  const file = join(dir, 'prompts.txt');
  await writeFile(file, `${lines.join('\n')}\n`);
  const args = ['enqueue', file, '--queue', QUEUE, '--out', dir, '--batch', 'b', '--rate', '100000/1', ...t.flags];
  await finish(spawnCli(args, env), 120_000, `enqueue (${t.what})`);
}

/** Jobs/s of one worker process taking the whole batch. */
async function throughput(t: Target, mock: MockApi): Promise<{ what: string; jobsPerS: number; spanMs: number }> {
  const prefix = benchPrefix('cluster');
  const tmp = await tempDir('nsbench-cluster-');
  const env = childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY, NIGHTSHIFT_PREFIX: prefix });
  delete env.REDIS_URL;
  const conn = createRedis(t.url, { lazyConnect: false });
  const queue = createQueue(conn, QUEUE, queuePrefix(prefix, QUEUE, t.cluster));
  try {
    await enqueue(t, env, tmp.dir, prompts(JOBS, `cluster ${t.what}`));
    const args = ['work', '--exit-when-idle', '--concurrency', String(CONCURRENCY), '--rate', '100000/1'];
    args.push('--queue', QUEUE, '--out', tmp.dir, '--log-level', 'warn', ...t.flags);
    await finish(spawnCli(args, env), 300_000, `work (${t.what})`);
    const span = await completedSpan(queue);
    if (span.count !== JOBS) throw new Error(`${t.what}: ${span.count} of ${JOBS} jobs completed`);
    return { what: t.what, jobsPerS: (JOBS / span.spanMs) * 1000, spanMs: span.spanMs };
  } finally {
    await queue.close();
    if (!t.cluster) await cleanupPrefix(conn, prefix);
    conn.disconnect();
    await tmp.cleanup();
  }
}

async function timedStatus(t: Target, env: NodeJS.ProcessEnv): Promise<number> {
  const r = await finish(spawnCli(['status', '--queue', QUEUE, ...t.flags], env), 60_000, 'status');
  return r.ms;
}

/** The failover run: returns its figures as table cells. */
async function failover(cluster: TestRedisCluster, t: Target): Promise<Array<[string, string]>> {
  const mock = await startMockApi({ latencyMs: 200 });
  const prefix = benchPrefix('cluster-fo');
  const tmp = await tempDir('nsbench-cluster-fo-');
  const env = childEnv({ STABILITY_API_HOST: mock.url, STABILITY_API_KEY: BENCH_KEY, NIGHTSHIFT_PREFIX: prefix });
  delete env.REDIS_URL;
  const jobs = Math.min(JOBS, 400);
  try {
    await enqueue(t, env, tmp.dir, prompts(jobs, 'cluster failover'));
    const args = ['work', '--exit-when-idle', '--concurrency', '8', '--rate', '100000/1', '--queue', QUEUE];
    const workers = [0, 1].map(() => spawnCli([...args, '--out', tmp.dir, '--log-level', 'warn', ...t.flags], env));
    while (mock.stats.generations.size < jobs / 4) await new Promise((r) => setTimeout(r, 50));
    const before = await timedStatus(t, env);
    const killAt = Date.now();
    await cluster.kill(await cluster.masterOf(queuePrefix(prefix, QUEUE, true)));
    const [during, healthyAt] = await Promise.all([timedStatus(t, env), cluster.waitHealthy().then(() => Date.now())]);
    for (const w of workers) await finish(w, 300_000, 'work (failover)');
    const twice = [...mock.stats.generations.values()].reduce((a, n) => a + n - 1, 0);
    if (mock.stats.generations.size !== jobs) throw new Error(`failover: ${mock.stats.generations.size} of ${jobs}`);
    return [
      ['jobs (2 workers × 8, 200 ms fake)', String(jobs)],
      ['replica took over after the kill', fmt.s(healthyAt - killAt)],
      ['`status` before the kill', fmt.s(before)],
      ['`status` asked right after the kill', fmt.s(during)],
      ['billed twice', String(twice)],
    ];
  } finally {
    await mock.close();
    await tmp.cleanup();
  }
}

export async function run(): Promise<BenchResult> {
  const why = clusterUnsupported();
  if (why) throw new Error(why);
  const mock = await startMockApi({ latencyMs: 0, imageBytes: 2000 });
  const cluster = await startRedisCluster();
  try {
    const single: Target = { what: 'one Redis', flags: ['--redis', redisUrl()], url: redisUrl(), cluster: false };
    const url = clusterTarget(cluster.nodes);
    const multi: Target = {
      what: 'cluster (3 masters)',
      flags: ['--redis-cluster', cluster.nodes],
      url,
      cluster: true,
    };
    const rows = [await throughput(single, mock), await throughput(multi, mock)];
    const fo = await failover(cluster, multi);
    const ratio = rows[1]!.jobsPerS / rows[0]!.jobsPerS;
    return {
      name: 'cluster',
      title: '10. Redis Cluster: throughput against one Redis, and a master failover',
      lines: [
        `${JOBS} jobs, one worker process, concurrency ${CONCURRENCY}, zero-latency fake; the cluster's six nodes run on this machine.`,
        '',
        ...table(
          ['Redis', 'jobs/s', 'span'],
          rows.map((r) => [r.what, fmt.n(r.jobsPerS), fmt.s(r.spanMs)]),
        ),
        '',
        'The master holding the queue’s slot SIGKILLed after a quarter of the batch:',
        '',
        ...table(['', ''], fo),
      ],
      goals: [
        {
          what: 'cluster jobs/s vs one Redis',
          value: `${fmt.n(ratio * 100, 0)} %`,
          goal: '≥ 50 %',
          pass: ratio >= 0.5,
        },
        {
          what: 'billed twice in the failover',
          value: fo[4]![1],
          goal: '≤ 16 (in flight)',
          pass: Number(fo[4]![1]) <= 16,
        },
      ],
    };
  } finally {
    await cluster.destroy();
    await mock.close();
  }
}

if (isMain(import.meta.url)) printResult(await run());
