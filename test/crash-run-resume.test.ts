import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { cliEnv, runCli, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { sleep } from './helpers/wait.js';

describe('crash: an interrupted `run`, run again with the same arguments', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let child: ReturnType<typeof startCli> | undefined;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [100, 200] });
  });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  it('finishes only the remaining jobs: every prompt billed once, one manifest line each', async () => {
    const JOBS = 30;
    const file = join(tmp.dir, 'resume.txt');
    await writeFile(
      file,
      `${Array.from({ length: JOBS }, (_, i) => `resume prompt ${i}, a tram in fog`).join('\n')}\n`,
    );
    const out = join(tmp.dir, 'out');
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-test',
    });
    const args = [
      'run',
      file,
      '--queue',
      'q',
      '--out',
      out,
      '--concurrency',
      '4',
      '--rate',
      '1000/1',
      '--lock-duration',
      '1',
      '--stalled-interval',
      '1',
    ];

    child = startCli(args, env);
    const answered = () => [...mock.stats.byStatus.values()].reduce((x, y) => x + y, 0);
    const end = Date.now() + 30_000;
    while (mock.stats.generations.size < 6 || mock.stats.total === answered()) {
      if (Date.now() > end) throw new Error('the first run never got going');
      await sleep(10);
    }
    child.kill('SIGINT'); // with requests in flight
    const first = await child.result;
    expect(first.code, first.stderr).toBe(130);
    expect(mock.stats.total).toBe(answered()); // they finished before the exit
    const paidFirst = mock.stats.generations.size;
    expect(paidFirst).toBeLessThan(JOBS);
    expect(first.stdout).toMatch(/interrupted: \d+ job\(s\) of batch resume left queued/);
    // The interrupted run still reports what it has (in-flight requests finished and were recorded).
    expect((await readManifest(join(out, 'resume', 'manifest.jsonl'))).records).toHaveLength(paidFirst);

    const second = await runCli(args, env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`added 0, already present ${JOBS}`);
    expect(second.stdout).toContain(`${JOBS} succeeded, 0 filtered, 0 failed`);

    expect(mock.stats.generations.size).toBe(JOBS);
    for (const n of mock.stats.generations.values()) expect(n).toBe(1);
    const text = (await readManifest(join(out, 'resume', 'manifest.jsonl'))).records;
    expect(text).toHaveLength(JOBS);
    const images = (await readdir(join(out, 'resume', 'images'))).filter(
      (f) => f.endsWith('.png') && !f.startsWith('.'),
    );
    expect(images).toHaveLength(JOBS);
    console.log(
      `[crash-run-resume] first run paid ${paidFirst} of ${JOBS}; the second paid the other ${JOBS - paidFirst}`,
    );
  });
});
