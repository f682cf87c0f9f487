import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

describe('--max-response-mb reaches the client of a real run', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: 5, imageBytes: 1_500_000 });
  });
  afterEach(async () => {
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  it('an answer over the cap is a transient failure, retried and never a success; under it, a success', async () => {
    const file = join(tmp.dir, 'big.txt');
    await writeFile(file, 'a very detailed lighthouse\n');
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-cap',
    });
    const small = await runCli(
      ['run', file, '--out', tmp.dir, '--queue', 'cap', '--max-response-mb', '1', '--backoff', '0.01'],
      env,
    );
    expect(small.code, small.stderr).toBe(1);
    const [line] = (await readFile(join(tmp.dir, 'big', 'manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(line!)).toMatchObject({
      status: 'failed',
      attempts: 5,
      error: { class: 'transient', name: 'response_too_large' },
    });
    const second = join(tmp.dir, 'big2.txt');
    await writeFile(second, 'a very detailed lighthouse, again\n');
    const big = await runCli(
      ['run', second, '--out', tmp.dir, '--queue', 'cap', '--max-response-mb', '2', '--backoff', '0.01'],
      env,
    );
    expect(big.code, big.stderr).toBe(0);
  });
});
