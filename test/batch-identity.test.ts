/**
 * A batch is (API, name): the README's flow, `run X --mock` and then `run X` for real, shares no state,
 * numbering, budget or folder between the two. Real processes, a real Redis, the HTTP fake as the API.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { createBatchState } from '../src/queue/batch-state.js';
import { createLedger } from '../src/billing/ledger.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

const KEY = 'sk-identity-test';
const JOBS = 9;

describe('a batch is (API, name)', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [20, 60] });
  });
  afterEach(async () => {
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const out = () => join(tmp.dir, 'out');
  const mockEnv = () => cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() });
  const realEnv = () =>
    cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl(), STABILITY_API_HOST: mock.url, STABILITY_API_KEY: KEY });

  it('`run X --mock` then `run X` for real: every real job sent once, none left waiting, the real budget untouched', async () => {
    const file = join(tmp.dir, 'x.txt');
    await writeFile(
      file,
      `${Array.from({ length: JOBS }, (_, i) => `identity prompt ${i}, a tram in fog`).join('\n')}\n`,
    );
    // The mock run spends 3 credits per image of its own batch X.
    const asMock = await runCli(['run', file, '--mock', '--out', out(), '--max-credits', String(3 * JOBS)], mockEnv());
    expect(asMock.code, asMock.stderr).toBe(0);
    expect(asMock.stdout).toContain(`images:   ${join(out(), 'mock', 'x', 'images')}`);

    // A budget that fits the real batch exactly: the mock's credits must not count against it.
    const args = ['run', file, '--out', out(), '--max-credits', String(3 * JOBS), '--rate', '1000/1'];
    const real = await runCli(args, realEnv());
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain(`added ${JOBS}, already present 0, already on disk 0`);
    expect(real.stdout).toContain(`${JOBS} succeeded, 0 filtered, 0 failed; ${3 * JOBS} credits`);
    expect(real.stdout).toContain(`images:   ${join(out(), 'x', 'images')}`);
    expect([...mock.stats.generations.values()]).toEqual(Array(JOBS).fill(1));

    const status = await runCli(['status', '--json', '--out', out()], realEnv());
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout);
    expect(s.queue).toBe('nightshift');
    expect(s.counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    expect(s.batches.x).toMatchObject({
      total: JOBS,
      succeeded: JOBS,
      pending: 0,
      credits: 3 * JOBS,
      budget: 3 * JOBS,
    });

    // The real batch's manifest and gallery hold only what the API sent for it, in its own folder.
    const realDir = join(out(), 'x');
    const { records } = await readManifest(join(realDir, 'manifest.jsonl'));
    expect(records).toHaveLength(JOBS);
    for (const r of records) {
      expect(r.status).toBe('succeeded');
      const bytes = await readFile(join(realDir, r.file!));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(r.sha256);
    }
    const gallery = await readFile(join(realDir, 'index.html'), 'utf8');
    expect(gallery).not.toContain('mock/');
    expect((await readdir(join(realDir, 'images'))).filter((f) => f.endsWith('.png'))).toHaveLength(JOBS);
    // The mock batch kept its own images and manifest.
    expect((await readManifest(join(out(), 'mock', 'x', 'manifest.jsonl'))).records).toHaveLength(JOBS);
  });

  it('a mock batch and the real batch of that name on the same --queue: the real jobs are added and sent', async () => {
    // Both id forms: a hash of what is generated, and a line's own `id`.
    const file = join(tmp.dir, 'x.jsonl');
    await writeFile(
      file,
      ['{"prompt":"a mill by a river"}', '{"prompt":"a harbour at dusk","id":"harbour"}', ''].join('\n'),
    );
    const asMock = await runCli(['run', file, '--mock', '--queue', 'shared', '--out', out()], mockEnv());
    expect(asMock.code, asMock.stderr).toBe(0);
    const args = ['run', file, '--queue', 'shared', '--out', out(), '--rate', '1000/1'];
    const real = await runCli(args, realEnv());
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain('added 2, already present 0, already on disk 0');
    expect(real.stdout).toContain('2 succeeded, 0 filtered, 0 failed');
    expect([...mock.stats.generations.values()]).toEqual([1, 1]);
    const ids = (await readManifest(join(out(), 'x', 'manifest.jsonl'))).records.map((r) => r.id);
    const mockIds = (await readManifest(join(out(), 'mock', 'x', 'manifest.jsonl'))).records.map((r) => r.id);
    expect(ids).toHaveLength(2);
    expect(ids.filter((id) => mockIds.includes(id))).toEqual([]);
  });

  it('refuses a real batch named `mock` (its folder holds the mock batches), exit 2 naming --batch', async () => {
    const file = join(tmp.dir, 'mock.txt');
    await writeFile(file, 'a prompt\n');
    const r = await runCli(['enqueue', file, '--queue', 'q', '--out', out()], realEnv());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--batch: "mock"');
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
    expect(mock.stats.total).toBe(0);
    // A mock batch may have that name: it lives in <out>/mock/mock.
    const m = await runCli(['enqueue', file, '--mock', '--queue', 'q', '--out', out()], mockEnv());
    expect(m.code, m.stderr).toBe(0);
  });

  it('`retry --max-credits N` only raises the budget; a batch without one gets N', async () => {
    const file = join(tmp.dir, 'budget.txt');
    await writeFile(file, `${Array.from({ length: 4 }, (_, i) => `budget prompt ${i}`).join('\n')}\n`);
    const work = ['work', '--queue', 'q', '--out', out(), '--exit-when-idle', '--rate', '1000/1', '--backoff', '0.01'];
    const enq = await runCli(['enqueue', file, '--queue', 'q', '--out', out(), '--max-credits', '6'], realEnv());
    expect(enq.code, enq.stderr).toBe(0);
    expect((await runCli(work, realEnv())).code).toBe(0);
    const budgetOf = async (batch: string) => {
      const state = createBatchState({ redis, prefix, api: mock.url });
      const ledger = createLedger({ redis, prefix, api: mock.url });
      return { ...(await state.counts(batch)), budget: (await ledger.get(batch)).budget };
    };
    expect(await budgetOf('budget')).toMatchObject({ budget: 6, succeeded: 2, failed: 2 });

    const lower = await runCli(['retry', '--queue', 'q', '--batch', 'budget', '--max-credits', '3'], realEnv());
    expect(lower.code, lower.stderr).toBe(0);
    expect(lower.stdout).toContain('budget of batch budget: 6 credits');
    expect((await budgetOf('budget')).budget).toBe(6);
    expect((await runCli(work, realEnv())).code).toBe(0);
    expect(await budgetOf('budget')).toMatchObject({ budget: 6, succeeded: 2, failed: 2 });

    const raise = await runCli(['retry', '--queue', 'q', '--batch', 'budget', '--max-credits', '12'], realEnv());
    expect(raise.stdout).toContain('budget of batch budget: 12 credits');
    expect((await runCli(work, realEnv())).code).toBe(0);
    expect(await budgetOf('budget')).toMatchObject({ budget: 12, succeeded: 4, failed: 0 });

    const none = await runCli(['retry', '--queue', 'q', '--batch', 'unbudgeted', '--max-credits', '5'], realEnv());
    expect(none.stdout).toContain('budget of batch unbudgeted: 5 credits');
    expect((await budgetOf('unbudgeted')).budget).toBe(5);
  });
});
