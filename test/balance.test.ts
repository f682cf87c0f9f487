/** `enqueue` with a key: the balance check, its exit codes, and its slot of the shared rate limit. */
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { apiKeyId } from '../src/billing/rate-limiter.js';
import { batchIndexKey, limiterKeys } from '../src/redis/keys.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { freePort } from '../src/redis/private.js';

const KEY = 'sk-balance-test';
/** Three `core` images at 3 credits each. */
const ESTIMATE = 9;

describe('enqueue checks the account balance', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let file: string;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ balance: 100, apiKey: KEY });
    file = join(tmp.dir, 'three.txt');
    await writeFile(file, 'a red fox\na grey owl\na blue whale\n');
  });
  afterEach(async () => {
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });
  afterAll(() => redis.disconnect());

  const env = (extra: Record<string, string> = {}) =>
    cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: KEY,
      ...extra,
    });
  const enqueue = (args: string[], e = env()) => runCli(['enqueue', file, '--queue', 'q', ...args], e);
  const jobKeys = async () => (await redis.keys(`${prefix}:q:*`)).filter((k) => !/:(meta|events|id)$/.test(k));
  const grantsKey = () => limiterKeys(prefix, apiKeyId(KEY)).grants;

  it('refuses with exit 4 when the estimate exceeds the balance, and enqueues nothing', async () => {
    mock.setBalance(ESTIMATE - 1);
    const r = await enqueue([]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain(`needs about ${ESTIMATE} credits but the account has ${ESTIMATE - 1}`);
    expect(r.stderr).toContain('--force');
    expect(await jobKeys()).toEqual([]);
    expect(await redis.zrange(batchIndexKey(prefix, mock.url), 0, -1)).toEqual([]);
  });

  it('enqueues anyway with --force', async () => {
    mock.setBalance(ESTIMATE - 1);
    const r = await enqueue(['--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('added 3');
    expect(r.stdout).toContain(`account balance: ${ESTIMATE - 1}`);
  });

  it('prints the balance when it covers the estimate; the check took one slot of the shared limit', async () => {
    const r = await enqueue([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('added 3');
    expect(r.stdout).toContain(`estimated credits: ${ESTIMATE}, account balance: 100`);
    expect(mock.stats.total).toBe(1);
    expect(await redis.zcard(grantsKey())).toBe(1);
    expect(r.stdout + r.stderr).not.toContain(KEY);
  });

  it('--json carries the summary fields', async () => {
    const r = await enqueue(['--json', '--batch', 'jb']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(s).toMatchObject({
      batch: 'jb',
      queue: 'q',
      prompts: 3,
      jobs: 3,
      added: 3,
      present: 0,
      estimatedCredits: ESTIMATE,
      balance: 100,
      dryRun: false,
    });
    expect(s.warnings).toEqual([]);
  });

  it('--max-credits below the estimate warns but enqueues', async () => {
    const r = await enqueue(['--max-credits', '5']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('added 3');
    expect(r.stdout).toMatch(/warning: .*exceeds --max-credits 5/);
  });

  it('--dry-run prints the counts and touches neither Redis nor the API', async () => {
    const r = await enqueue(['--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('3 prompts → 3 jobs');
    expect(r.stdout).toContain(`estimated credits: ${ESTIMATE}`);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
    expect(mock.stats.total).toBe(0);
  });

  it('exit 3 when the API host is unreachable', async () => {
    const r = await enqueue([], env({ STABILITY_API_HOST: `http://127.0.0.1:${await freePort()}` }));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/unreachable/);
    expect(await jobKeys()).toEqual([]);
  });

  it('exit 3, nothing enqueued, when the API cannot answer the balance check (a 5xx)', async () => {
    const server = createServer((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('down'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await enqueue([], env({ STABILITY_API_HOST: url }));
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(
        /the API could not answer while checking the balance \(HTTP 500\).*nothing was enqueued/,
      );
      expect(await jobKeys()).toEqual([]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('exit 4 when the API refuses the key', async () => {
    const r = await enqueue([], env({ STABILITY_API_KEY: 'sk-not-the-right-one' }));
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/refused the key.*401/);
    expect(r.stderr).not.toContain('sk-not-the-right-one');
    expect(await jobKeys()).toEqual([]);
  });
});
