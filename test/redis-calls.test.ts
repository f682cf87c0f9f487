/**
 * Every Redis round trip is latency added to every job: nightshift's own calls per paid job stay
 * at most 4 (one script before the request, one after, a rate-slot confirmation when the job had
 * to wait for its slot). Counted with MONITOR on a private redis-server, which sees every command a
 * client sends (commands run inside scripts are marked as such and left out); BullMQ's own commands
 * on its queue keys are not ours and are counted apart.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { randomPrefix } from './helpers/redis.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

const KEY = 'sk-calls-test';

interface Counts {
  ours: number;
  bullmq: number;
  byCommand: Map<string, number>;
}

/** Counts the client commands on `prefix` keys: ours (`<prefix>:ns:…`) and BullMQ's (the rest). */
async function monitor(url: string, prefix: string) {
  const conn = new Redis(url);
  const counts: Counts = { ours: 0, bullmq: 0, byCommand: new Map() };
  const m = await conn.monitor();
  m.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') return;
    const cmd = args[0]!.toLowerCase();
    const key = (cmd === 'evalsha' || cmd === 'eval' ? args[3] : args[1]) ?? '';
    if (!key.startsWith(prefix)) return;
    if (!key.startsWith(`${prefix}:ns:`)) return void counts.bullmq++;
    counts.ours++;
    const label = `${cmd} ${key.slice(prefix.length).replace(/:job:[^:]+:[^:]+:/, ':job:<job>:')}`;
    counts.byCommand.set(label, (counts.byCommand.get(label) ?? 0) + 1);
  });
  return {
    async stop(): Promise<Counts> {
      m.disconnect();
      conn.disconnect();
      return counts;
    },
  };
}

describe("nightshift's own Redis calls per job", () => {
  let server: TestRedisServer;
  let mock: MockApi;
  beforeAll(async () => {
    server = await startRedisServer(['--save', '', '--appendonly', 'no']);
    mock = await startMockApi({ latencyMs: [1, 5] });
  });
  afterAll(async () => {
    await mock?.close();
    await server?.destroy();
  });

  async function batchOf(jobs: number, rate: string, concurrency: number) {
    const prefix = randomPrefix();
    const tmp = await tempDir();
    try {
      const env = cliEnv({
        NIGHTSHIFT_PREFIX: prefix,
        REDIS_URL: server.url,
        STABILITY_API_HOST: mock.url,
        STABILITY_API_KEY: KEY,
      });
      const file = join(tmp.dir, 'calls.txt');
      await writeFile(
        file,
        Array.from({ length: jobs }, (_, i) => `calls ${rate} ${i}, a harbour at night`).join('\n'),
      );
      const e = await runCli(['enqueue', file, '--queue', 'q', '--batch', 'b', '--rate', rate], env);
      expect(e.code, e.stderr).toBe(0);
      const mon = await monitor(server.url, prefix);
      const flags = ['--concurrency', String(concurrency), '--rate', rate, '--rate-margin', '0.1'];
      const w = await runCli(
        ['work', '--exit-when-idle', '--queue', 'q', '--out', join(tmp.dir, 'out'), ...flags],
        env,
      );
      const counts = await mon.stop();
      expect(w.code, w.stderr).toBe(0);
      expect(w.stdout.split('"image saved"').length - 1).toBe(jobs);
      console.info(
        `[redis-calls] ${jobs} jobs at --rate ${rate}: ours ${(counts.ours / jobs).toFixed(2)} per job, BullMQ ${(counts.bullmq / jobs).toFixed(2)}; ` +
          [...counts.byCommand].map(([k, n]) => `${k} ${(n / jobs).toFixed(2)}`).join(', '),
      );
      return counts;
    } finally {
      await tmp.cleanup();
    }
  }

  it('at most 4 per job when nothing waits for the rate limit', async () => {
    const jobs = 40;
    const counts = await batchOf(jobs, '1000/1', 8);
    // The worker's start, heartbeat and idle exit are included: they are few, whatever the batch.
    expect(counts.ours / jobs).toBeLessThanOrEqual(4);
  });

  it('at most 4 per job when every job waits for its slot', async () => {
    const jobs = 30;
    // 10 a second at concurrency 16: almost every job books a slot ahead and confirms it.
    const counts = await batchOf(jobs, '10/1', 16);
    expect(counts.ours / jobs).toBeLessThanOrEqual(4);
  });
});
