/**
 * A batch on a real Redis Cluster (3 masters, 3 replicas) while a master is SIGKILLed mid-batch:
 * the one holding the queue's slot (BullMQ's keys), or the one holding the slot queues share
 * (claims, sent marks, ledger, limiter). Its replica takes over, the workers carry on, every image
 * is made once, only requests in flight at the kill may be billed twice, and `status` answers
 * throughout.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import type { MockRequestRecord } from '../src/mock-api/types.js';
import { queuePrefix } from '../src/redis/keys.js';
import { cliEnv, runCli, startCli } from './helpers/cli.js';
import { randomPrefix } from './helpers/redis.js';
import { clusterUnsupported, startRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js';
import { until } from './helpers/wait.js';

const unsupported = clusterUnsupported();
if (unsupported) console.warn(`skipping the Redis Cluster failover test: ${unsupported}`);

const JOBS = 300;
const WORKERS = 2;
const CONCURRENCY = 4;
const BATCH = 'b';

type Child = ReturnType<typeof startCli>;

async function manifestIds(batchDir: string): Promise<Map<string, string>> {
  const text = await readFile(join(batchDir, 'manifest.jsonl'), 'utf8').catch(() => '');
  const byId = new Map<string, string>();
  // Workers append while we read: what follows the last newline may be half a line.
  for (const line of text.split('\n').slice(0, -1)) {
    const r = JSON.parse(line) as { id: string; status: string };
    byId.set(r.id, r.status);
  }
  return byId;
}

function startWorker(args: string[], env: NodeJS.ProcessEnv): Child & { started: () => boolean } {
  const c = startCli(['work', ...args], env);
  let log = '';
  c.stdout!.on('data', (d) => (log += d));
  return Object.assign(c, { started: () => log.includes('"worker started"') });
}

/** Generations billed more than once, and those whose request had left before `t`. */
function doubleBilling(requests: readonly MockRequestRecord[], t: number) {
  const billed = new Map<string, number>();
  for (const r of requests) if (r.billed && r.generation) billed.set(r.generation, (billed.get(r.generation) ?? 0) + 1);
  const twice = [...billed].filter(([, n]) => n > 1).map(([g]) => g);
  const sentBefore = new Set(requests.filter((r) => r.arrival <= t && r.generation).map((r) => r.generation!));
  const duplicates = [...billed.values()].reduce((a, n) => a + n - 1, 0);
  return { billed, twice, notInFlight: twice.filter((g) => !sentBefore.has(g)), duplicates };
}

interface Run {
  cluster: TestRedisCluster;
  mock: MockApi;
  env: NodeJS.ProcessEnv;
  prefix: string;
  queue: string;
  batchDir: string;
  password: string;
  /** Everything the commands printed, to look for the password in. */
  printed: string[];
}

const status = (r: Run) => runCli(['status', '--json', '--queue', r.queue], r.env, 30_000);

/** Polls `status` from the kill until the batch is done; every poll must answer. Returns when each was asked. */
async function pollUntilDone(r: Run, killAt: number): Promise<number[]> {
  const polls: number[] = [];
  for (;;) {
    const asked = Date.now();
    const s = await status(r);
    expect(s.code, s.stderr).toBe(0);
    r.printed.push(s.stdout, s.stderr);
    polls.push(asked);
    const st = JSON.parse(s.stdout) as { batches: Record<string, { succeeded: number }> };
    if (st.batches[BATCH]?.succeeded === JOBS && (await manifestIds(r.batchDir)).size === JOBS) return polls;
    expect(Date.now() - killAt, 'the batch finished within 60 s of the kill').toBeLessThan(60_000);
  }
}

/** Every job succeeded once on disk, and only requests sent before the kill were billed twice. */
async function expectEveryImageOnce(r: Run, killAt: number) {
  const final = await status(r);
  const st = JSON.parse(final.stdout) as { batches: Record<string, Record<string, number>> };
  expect(st.batches[BATCH]).toMatchObject({ total: JOBS, succeeded: JOBS, failed: 0, pending: 0 });
  const manifest = await manifestIds(r.batchDir);
  expect([...manifest.values()].filter((s) => s !== 'succeeded')).toEqual([]);
  const images = (await readdir(join(r.batchDir, 'images'))).filter((f) => /^\d{5}-.*\.png$/.test(f));
  expect(images.length).toBe(JOBS);
  const bill = doubleBilling(r.mock.stats.requests, killAt);
  expect(bill.billed.size).toBe(JOBS);
  // Paid twice only for requests that had left when the master died: at most what the workers hold.
  expect(bill.notInFlight).toEqual([]);
  expect(bill.duplicates).toBeLessThanOrEqual(WORKERS * CONCURRENCY);
  return bill;
}

describe.skipIf(unsupported !== null)('Redis Cluster: a master dies mid-batch', () => {
  let run: Run | null = null;
  let dir: string | null = null;
  const children: Child[] = [];
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
    await run?.cluster.destroy();
    await run?.mock.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    run = dir = null;
  });

  /** A cluster whose every node wants a password (given in the URL form), the fake API, an output folder. */
  async function setUp(): Promise<Run> {
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const cluster = await startRedisCluster({ password });
    const mock = await startMockApi({ latencyMs: [200, 400] });
    dir = await mkdtemp(join(tmpdir(), 'nightshift-cluster-out-'));
    const prefix = randomPrefix();
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_CLUSTER_NODES: cluster.nodes,
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-cluster-test',
    });
    const batchDir = join(dir, BATCH);
    return { cluster, mock, env, prefix, queue: 'cluster-q', batchDir, password, printed: [] };
  }

  /** Workers take a batch; `victimKey`'s master is killed after a quarter; the batch must complete. */
  async function failover(victimKey: (r: Run) => string, what: string): Promise<void> {
    const r = (run = await setUp());
    const common = ['--queue', r.queue, '--out', dir!];
    const workArgs = [...common, '--concurrency', String(CONCURRENCY), '--rate', '1000/1', '--backoff', '0.05'];
    const workers = Array.from({ length: WORKERS }, () => startWorker(workArgs, r.env));
    children.push(...workers);
    await until('workers started', () => workers.every((w) => w.started()), 45_000);

    const file = join(dir!, 'prompts.txt');
    await writeFile(file, Array.from({ length: JOBS }, (_, i) => `cluster prompt ${i}, a harbour at dawn\n`).join(''));
    const enq = await runCli(['enqueue', file, ...common, '--batch', BATCH, '--rate', '1000/1'], r.env);
    expect(enq.code, enq.stderr).toBe(0);
    r.printed.push(enq.stdout, enq.stderr);
    await until('a quarter of the batch done', async () => (await manifestIds(r.batchDir)).size >= JOBS / 4, 45_000);

    const victim = await r.cluster.masterOf(victimKey(r));
    const killAt = Date.now();
    await r.cluster.kill(victim);
    const doneAtKill = (await manifestIds(r.batchDir)).size;
    expect(doneAtKill).toBeLessThan(JOBS);
    const healthy = r.cluster.waitHealthy(30_000).then(() => Date.now());
    const polls = await pollUntilDone(r, killAt);
    const failoverDone = await healthy;
    // Asked while the slot had no master, and answered (exit 0) all the same.
    const duringFailover = polls.filter((t) => t < failoverDone).length;
    expect(duringFailover, 'a status poll during the failover').toBeGreaterThan(0);

    const bill = await expectEveryImageOnce(r, killAt);
    for (const w of workers) w.kill('SIGTERM');
    for (const res of await Promise.all(workers.map((w) => w.result))) {
      expect(res.code, res.stderr).toBe(130);
      r.printed.push(res.stdout, res.stderr);
    }
    expect(r.printed.filter((t) => t.includes(r.password))).toEqual([]);
    console.log(
      `cluster failover (${what}): ${JOBS} jobs, master :${victim} killed at ${doneAtKill} done, ` +
        `replica took over in ${failoverDone - killAt} ms, ${bill.duplicates} billed twice, ` +
        `${polls.length} status polls (${duringFailover} during the failover)`,
    );
  }

  it("the queue's master: every image once, only in-flight requests billed twice, status answering", async () => {
    await failover((r) => queuePrefix(r.prefix, r.queue, true), "the queue's slot");
  });

  it("the shared state's master (claims, ledger, limiter): the same", async () => {
    await failover((r) => r.prefix, 'the shared slot');
  });
});
