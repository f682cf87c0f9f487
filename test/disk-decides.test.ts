/**
 * The disk decides what was paid: a rerun of a batch (on a fresh queue, after a wiped Redis, with its
 * file edited) pays nothing for the images already in the batch folder, and numbers new jobs after them.
 * Real processes against a real Redis and the HTTP fake of the API.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { cliEnv, runCli, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

const KEY = 'sk-disk-test';

describe('the disk decides what was paid', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let server: TestRedisServer | undefined;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [5, 20] });
  });
  afterEach(async () => {
    await mock.close();
    await server?.destroy();
    server = undefined;
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const out = () => join(tmp.dir, 'out');
  const env = (url = redisUrl()) =>
    cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: url, STABILITY_API_HOST: mock.url, STABILITY_API_KEY: KEY });
  const run = (file: string, args: string[], e = env()): Promise<CliResult> =>
    runCli(['run', file, '--out', out(), '--rate', '1000/1', ...args], e);
  const lines = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => `${tag} number ${i}, a harbour at dawn`);
  /** Requests per prompt the fake answered with an image (it is billed for each). */
  const billed = () => [...mock.stats.generations.values()];
  const images = async (batch: string) =>
    (await readdir(join(out(), batch, 'images'))).filter((f) => f.endsWith('.png') && !f.startsWith('.')).sort();

  it('a rerun on a fresh queue sends nothing: every image is already on disk', async () => {
    const file = join(tmp.dir, 'fresh.txt');
    await writeFile(file, `${lines(10, 'fresh queue').join('\n')}\n`);
    const first = await run(file, ['--queue', 'q1']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('added 10, already present 0, already on disk 0');
    const requests = mock.stats.total;

    const second = await run(file, ['--queue', 'q2']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('added 0, already present 0, already on disk 10');
    expect(second.stdout).toContain('10 succeeded, 0 filtered, 0 failed');
    // Not one request: no generation, and no balance check for a batch that adds nothing.
    expect(mock.stats.total).toBe(requests);
    expect(billed()).toEqual(Array(10).fill(1));
    const { records } = await readManifest(join(out(), 'fresh', 'manifest.jsonl'));
    expect(records).toHaveLength(10);
    expect(await images('fresh')).toHaveLength(10);

    const json = await runCli(['status', '--json', '--queue', 'q2', '--out', out()], env());
    expect(JSON.parse(json.stdout).batches.fresh).toMatchObject({ total: 10, succeeded: 10, pending: 0 });
  });

  it('after FLUSHALL, with 2 lines inserted at the top and 2 swapped, only the 2 new images are bought, numbered after the files', async () => {
    server = await startRedisServer(['--save', '']);
    const file = join(tmp.dir, 'edited.txt');
    const original = lines(8, 'edited file');
    await writeFile(file, `${original.join('\n')}\n`);
    const first = await run(file, [], env(server.url));
    expect(first.code, first.stderr).toBe(0);
    const before = await images('edited');
    expect(before.map((f) => f.slice(0, 5))).toEqual([
      '00001',
      '00002',
      '00003',
      '00004',
      '00005',
      '00006',
      '00007',
      '00008',
    ]);

    const wiped = new Redis(server.url);
    await wiped.flushall();
    wiped.disconnect();
    const edited = ['a new first line, a lighthouse', 'a new second line, a fox', ...original];
    [edited[4], edited[7]] = [edited[7]!, edited[4]!];
    await writeFile(file, `${edited.join('\n')}\n`);
    const second = await run(file, [], env(server.url));
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('added 2, already present 0, already on disk 8');
    expect(second.stdout).toContain('10 succeeded, 0 filtered, 0 failed');

    // Each image billed exactly once, across both runs.
    expect(billed()).toEqual(Array(10).fill(1));
    const after = await images('edited');
    expect(after).toHaveLength(10);
    expect(after.filter((f) => before.includes(f))).toEqual(before);
    expect(
      after
        .filter((f) => !before.includes(f))
        .map((f) => f.slice(0, 5))
        .sort(),
    ).toEqual(['00009', '00010']);
    const text = await readFile(join(out(), 'edited', 'manifest.jsonl'), 'utf8');
    const manifest = text.trim().split('\n');
    expect(manifest).toHaveLength(10);
    expect(new Set(manifest.map((l) => (JSON.parse(l) as { id: string }).id)).size).toBe(10);
    console.log(
      `[disk-decides] wiped Redis, edited file: ${mock.stats.total} requests for 10 images (${billed().reduce((a, b) => a + b, 0)} generations, the rest balance checks)`,
    );
  });
});
