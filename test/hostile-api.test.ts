/**
 * An API answering what it should not: a paid image with a seed header no seed can have, a 429 asking
 * for a 31-year wait, a v1 engine it no longer lists or suddenly answers 404 for. Real processes, a
 * real Redis, the HTTP fake of the API.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi, type MockApiOptions } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { apiKeyId } from '../src/billing/rate-limiter.js';
import { limiterKeys } from '../src/redis/keys.js';
import { cliEnv, runCli, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const KEY = 'sk-hostile-test';
const V1 = 'stable-diffusion-v1-6';

describe('a hostile API', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi | undefined;
  const children: Array<ReturnType<typeof startCli>> = [];

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
    await mock?.close();
    mock = undefined;
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const out = () => join(tmp.dir, 'out');
  const start = async (o: MockApiOptions = {}) => (mock = await startMockApi({ latencyMs: [5, 20], ...o }));
  /** `key: false`: a command run without the key (status and resume find the workers' key by its id). */
  const env = (o: { key?: boolean } = {}) =>
    cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock!.url,
      ...(o.key === false ? {} : { STABILITY_API_KEY: KEY }),
    });
  const promptFile = async (n: number, tag: string) => {
    const file = join(tmp.dir, `${tag}.txt`);
    await writeFile(file, `${Array.from({ length: n }, (_, i) => `${tag} prompt ${i}, a lighthouse`).join('\n')}\n`);
    return file;
  };
  const status = async () => {
    const r = await runCli(['status', '--json', '--queue', 'q', '--out', out()], env({ key: false }));
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };
  const work = (extra: string[] = []) => {
    const c = startCli(
      ['work', '--queue', 'q', '--out', out(), '--exit-when-idle', '--rate', '1000/1', ...extra],
      env(),
    );
    children.push(c);
    return c;
  };

  it('a 200 with `seed: 1e21`: exactly one request, the image kept, the requested seed recorded', async () => {
    await start({ fault: ({ model }) => (model ? { kind: 'bad-seed', value: '1e21' } : undefined) });
    const file = await promptFile(1, 'seed');
    const r = await runCli(['run', file, '--queue', 'q', '--out', out()], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('1 succeeded, 0 filtered, 0 failed');
    expect([...mock!.stats.generations.values()]).toEqual([1]);
    expect(mock!.stats.total).toBe(2); // the balance check and the one generation
    const [rec] = (await readManifest(join(out(), 'seed', 'manifest.jsonl'))).records;
    expect(rec!.status).toBe('succeeded');
    const requested = Number([...mock!.stats.generations.keys()][0]!.split('|')[2]);
    expect(rec!.seed).toBe(requested);
    expect(r.stdout).toMatch(/seed header .*1e21.* is not a seed/);
  });

  it('`Retry-After: 999999999` locks the key out for 10 minutes at most, and `resume` lifts it', async () => {
    let limited = false;
    await start({
      fault: ({ model }) => {
        if (!model || limited) return undefined;
        limited = true;
        return { status: 429, retryAfterSec: 999_999_999 };
      },
    });
    const file = await promptFile(3, 'lockout');
    const enq = await runCli(['enqueue', file, '--queue', 'q', '--out', out()], env());
    expect(enq.code, enq.stderr).toBe(0);
    const w = work(['--concurrency', '1']);
    let log = '';
    w.stdout!.on('data', (d) => (log += d));
    const s = await until(
      'the lockout',
      async () => {
        const now = await status();
        return now.lockout_ms > 0 ? now : null;
      },
      45_000,
    );
    expect(s.lockout_ms).toBeLessThanOrEqual(600_000);
    expect(s.lockout_ms).toBeGreaterThan(500_000);
    expect(s.workers).toHaveLength(1);
    expect(s.workers[0]).toMatchObject({ concurrency: 1, key_id: apiKeyId(KEY) });
    expect(await redis.pttl(limiterKeys(prefix, apiKeyId(KEY)).lockout)).toBeLessThanOrEqual(600_000);
    expect(log).toContain('waiting 10 minutes');

    // Without the key: the workers registered its id.
    const resumed = await runCli(['resume', '--queue', 'q', '--out', out()], env({ key: false }));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/lifted a 429 lockout \(\d+ s were left\)/);
    expect((await status()).lockout_ms).toBe(0);
    const done = await w.result;
    expect(done.code, done.stderr).toBe(0);
    expect([...mock!.stats.generations.values()]).toEqual([1, 1, 1]);
    expect(mock!.stats.byStatus.get(429)).toBe(1);
  });

  it('refuses at enqueue a v1 engine the API does not list (exit 2, file:line, the v2beta model and its price)', async () => {
    await start({ engines: ['stable-diffusion-xl-1024-v1-0'] });
    const file = await promptFile(2, 'retired');
    const r = await runCli(['enqueue', file, '--queue', 'q', '--out', out(), '--model', V1], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1: model:`);
    expect(r.stderr).toContain(`${file}:2: model:`);
    expect(r.stderr).toContain(`the API does not list the v1 engine ${V1}`);
    expect(r.stderr).toContain('--model core, 3 credits per image');
    // One request, the engine list, which took its slot of the shared rate limit; nothing enqueued.
    expect(mock!.stats.total).toBe(1);
    expect(await redis.zcard(limiterKeys(prefix, apiKeyId(KEY)).grants)).toBe(1);
    expect((await redis.keys(`${prefix}:q:*`)).filter((k) => !/:(meta|events|id)$/.test(k))).toEqual([]);
  });

  it('an engine 404 mid-batch pauses the queue (reason `engine`) and fails no job; `resume` lets it finish', async () => {
    let served = 0;
    let retired = true;
    await start({
      fault: ({ model }) => {
        if (model !== V1) return undefined;
        served++;
        return retired && served > 2
          ? { status: 404, name: 'not_found', message: `The specified engine (ID ${V1}) was not found.` }
          : undefined;
      },
    });
    const file = await promptFile(6, 'engine');
    const enq = await runCli(['enqueue', file, '--queue', 'q', '--out', out(), '--model', V1], env());
    expect(enq.code, enq.stderr).toBe(0);
    const first = await work(['--concurrency', '1']).result;
    expect(first.code, first.stderr).toBe(4);
    expect(first.stdout).toContain('no longer serves the v1 engine');
    const s = await status();
    expect(s.paused).toBe(true);
    expect(s.paused_by.reason).toBe('engine');
    expect(s.counts.failed).toBe(0);
    expect(s.batches.engine).toMatchObject({ total: 6, succeeded: 2, failed: 0, pending: 4 });

    retired = false;
    const resumed = await runCli(['resume', '--queue', 'q', '--out', out()], env({ key: false }));
    expect(resumed.code, resumed.stderr).toBe(0);
    const second = await work().result;
    expect(second.code, second.stderr).toBe(0);
    expect((await status()).batches.engine).toMatchObject({ total: 6, succeeded: 6, failed: 0, pending: 0 });
    expect([...mock!.stats.generations.values()]).toEqual(Array(6).fill(1));
  });
});
