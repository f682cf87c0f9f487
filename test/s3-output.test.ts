/**
 * `--out s3://BUCKET/PREFIX` against a real S3-compatible server on loopback (s3rver), real
 * processes, a real Redis and the HTTP fake of the API: every file of a batch is an object, a rerun
 * on a fresh queue pays nothing (the objects decide), and PUTs that fail after a paid answer are
 * retried from the kept bytes, never by asking the API again.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { cliEnv, runCli, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import {
  getObject,
  listAll,
  loadS3rver,
  S3RVER_CREDENTIALS,
  sha256,
  startFaultyProxy,
  startS3,
  type FaultyProxy,
  type TestS3,
} from './helpers/s3.js';

const KEY = 'sk-s3-test';
const BUCKET = 'bucket';
const loaded = await loadS3rver();
if ('missing' in loaded) console.warn(`[s3] skipped: s3rver cannot be loaded (${loaded.missing}); run npm ci`);

describe.skipIf('missing' in loaded)('--out s3://BUCKET/PREFIX on an S3-compatible server', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let s3: TestS3;
  let proxy: FaultyProxy | undefined;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    await mkdir(join(tmp.dir, 's3'));
    mock = await startMockApi({ latencyMs: [5, 20] });
    s3 = await startS3((loaded as { S3rver: Parameters<typeof startS3>[0] }).S3rver, {
      dir: join(tmp.dir, 's3'),
      buckets: [BUCKET],
    });
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await s3.close();
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const env = (endpoint: string, extra: Record<string, string> = {}) =>
    cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: KEY,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      ...S3RVER_CREDENTIALS,
      ...extra,
    });
  const run = (file: string, args: string[], e: NodeJS.ProcessEnv): Promise<CliResult> =>
    runCli(['run', file, '--out', `s3://${BUCKET}/night`, '--rate', '1000/1', '--backoff', '0.1', ...args], e, 120_000);
  const promptFile = async (name: string, n: number) => {
    const file = join(tmp.dir, `${name}.txt`);
    const lines = Array.from({ length: n }, (_, i) => `${name} number ${i}, a lighthouse in the fog`);
    await writeFile(file, `${lines.join('\n')}\n`);
    return file;
  };
  /** Requests per prompt the fake answered with an image (it is billed for each). */
  const billed = () => [...mock.stats.generations.values()];

  /** The batch's objects, and its manifest checked against them: one line per image, sizes and digests. */
  async function checkBatch(batch: string, n: number) {
    const base = `night/${batch}/`;
    const objects = await listAll(s3.client, BUCKET, base);
    const keys = [...objects.keys()].map((k) => k.slice(base.length));
    const images = keys.filter((k) => /^images\/.*\.png$/.test(k));
    expect(images).toHaveLength(n);
    expect(keys.filter((k) => /^images\/.*\.json$/.test(k))).toHaveLength(n);
    expect(keys.filter((k) => /^thumbs\/.*\.webp$/.test(k))).toHaveLength(n);
    expect(keys).toContain('manifest.jsonl');
    expect(keys).toContain('index.html');
    const manifest = (await getObject(s3.client, BUCKET, `${base}manifest.jsonl`)).toString('utf8');
    const records = manifest
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(n);
    expect(new Set(records.map((r) => r.id)).size).toBe(n);
    for (const r of records) {
      expect(r).toMatchObject({ batch, status: 'succeeded', error: null });
      const bytes = await getObject(s3.client, BUCKET, `${base}${r.file}`);
      expect({ file: r.file, bytes: bytes.length, sha256: sha256(bytes) }).toEqual({
        file: r.file,
        bytes: r.bytes,
        sha256: r.sha256,
      });
      // Every image carries its sidecar, the per-job record the manifest is rebuilt from.
      const sidecar = JSON.parse(
        (await getObject(s3.client, BUCKET, `${base}${r.file.replace(/\.png$/, '.json')}`)).toString(),
      );
      expect(sidecar.id).toBe(r.id);
    }
    const gallery = (await getObject(s3.client, BUCKET, `${base}index.html`)).toString('utf8');
    expect(gallery).toContain('<html');
    return records;
  }

  it('writes images, sidecars, thumbnails, the manifest and the gallery as objects; a rerun on a fresh queue pays nothing', async () => {
    const file = await promptFile('harbour', 6);
    const first = await run(file, ['--queue', 'q1'], env(s3.url));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('6 succeeded, 0 filtered, 0 failed');
    expect(first.stdout).toContain(`manifest: s3://${BUCKET}/night/harbour/manifest.jsonl`);
    await checkBatch('harbour', 6);
    expect(billed()).toEqual(Array(6).fill(1));
    const requests = mock.stats.total;

    const second = await run(file, ['--queue', 'q2'], env(s3.url));
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('added 0, already present 0, already on disk 6');
    expect(second.stdout).toContain('6 succeeded, 0 filtered, 0 failed');
    // Not one request: no generation, no balance check for a batch that adds nothing.
    expect(mock.stats.total).toBe(requests);
    expect(billed()).toEqual(Array(6).fill(1));
    await checkBatch('harbour', 6);

    // Objects cannot be appended to: `report` rebuilds the manifest and gallery from the per-job records.
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'night/harbour/manifest.jsonl' }));
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'night/harbour/index.html' }));
    const report = await runCli(['report', '--batch', 'harbour', '--out', `s3://${BUCKET}/night`], env(s3.url));
    expect(report.code, report.stderr).toBe(0);
    await checkBatch('harbour', 6);
    expect(mock.stats.total).toBe(requests);
    // A batch that is not there is a usage error, and leaves nothing behind.
    const none = await runCli(['report', '--batch', 'nosuch', '--out', `s3://${BUCKET}/night`], env(s3.url));
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain('no batch "nosuch"');
    expect((await listAll(s3.client, BUCKET, 'night/nosuch/')).size).toBe(0);
  });

  it('a store failing 20% of its image PUTs: every image kept and written, each API request sent once', async () => {
    proxy = await startFaultyProxy(s3.url, { every: 5, match: /\/images\// });
    const file = await promptFile('fog', 12);
    // One try per PUT in the SDK: a failed write reaches nightshift, which keeps the bytes and retries it.
    const result = await run(file, ['--queue', 'q1'], env(proxy.url, { AWS_MAX_ATTEMPTS: '1' }));
    expect(result.code, result.stderr + result.stdout).toBe(0);
    expect(result.stdout).toContain('12 succeeded, 0 filtered, 0 failed');
    expect(proxy.failed.length).toBeGreaterThanOrEqual(Math.floor((12 * 2) / 5));
    // Each image whose write failed was written again later, from the bytes it was paid for.
    for (const path of proxy.failed) expect(proxy.passed).toContain(path);
    expect(billed()).toEqual(Array(12).fill(1));
    expect(result.stdout).toContain('bytes kept in Redis, the write will be retried');
    await checkBatch('fog', 12);
    console.log(
      `[s3] ${proxy.failed.length} of ${proxy.failed.length + proxy.passed.length} image PUTs failed; ${mock.stats.total} API requests for 12 images`,
    );
  });

  it('two workers sharing only Redis and the bucket: every image once, each request sent once, report rebuilds all', async () => {
    const file = await promptFile('shared', 16);
    const out = ['--out', `s3://${BUCKET}/night`, '--queue', 'q1'];
    const added = await runCli(['enqueue', file, ...out], env(s3.url));
    expect(added.code, added.stderr).toBe(0);
    const work = ['work', ...out, '--exit-when-idle', '--rate', '1000/1', '--concurrency', '4'];
    const workers = await Promise.all([runCli(work, env(s3.url), 120_000), runCli(work, env(s3.url), 120_000)]);
    for (const w of workers) expect(w.code, w.stderr).toBe(0);
    // `work` appends nothing to an object store: the manifest comes from the per-job records.
    const report = await runCli(['report', '--batch', 'shared', ...out], env(s3.url));
    expect(report.code, report.stderr).toBe(0);
    await checkBatch('shared', 16);
    expect(billed()).toEqual(Array(16).fill(1));
  });
});
