import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { freePort } from '../src/redis/private.js';
import { cliEnv, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { until } from './helpers/wait.js';

/** `name{labels} value` lines of a Prometheus text page, by metric name and labels. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) ([-0-9.e+]+|NaN)$/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('--metrics-port: Prometheus metrics scraped during a batch', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    // One 500 on the first try of one prompt, so a 5xx is counted; the rest take a moment.
    mock = await startMockApi({
      latencyMs: 150,
      fault: ({ prompt, attempt }) => (prompt.endsWith(' 3') && attempt === 1 ? { status: 500 } : undefined),
    });
  });
  afterEach(async () => {
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  it('counts requests by status class, credits, latency, concurrency, lockout, limiter use and jobs by state', async () => {
    const file = join(tmp.dir, 'm.txt');
    await writeFile(file, Array.from({ length: 40 }, (_, i) => `a lighthouse, take ${i}`).join('\n'));
    const port = await freePort();
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-m',
    });
    const child = startCli(
      [
        'run',
        file,
        '--out',
        tmp.dir,
        '--queue',
        'mq',
        '--concurrency',
        '4',
        '--backoff',
        '0.05',
        '--metrics-port',
        String(port),
      ],
      env,
    );
    const url = `http://127.0.0.1:${port}/metrics`;
    const during = await until('a scrape with answers counted', async () => {
      const text = await fetch(url).then(
        (r) => r.text(),
        () => '',
      );
      const m = parse(text);
      return (m.get('nightshift_requests_total{class="2xx"}') ?? 0) >= 5 ? { text, m } : null;
    });
    expect(during.m.get('nightshift_concurrency')).toBe(4);
    expect(during.m.get('nightshift_lockout_seconds')).toBe(0);
    expect(during.m.get('nightshift_limiter_utilization')).toBeGreaterThan(0);
    expect(during.m.get('nightshift_credits_billed_total')).toBe(
      3 * during.m.get('nightshift_requests_total{class="2xx"}')!,
    );
    expect(during.text).toMatch(/nightshift_request_duration_seconds_bucket\{le="0.5"\} \d+/);
    expect(during.text).toMatch(/bullmq_job_count\{queue="mq", ?state="completed"\} \d+/);
    expect(during.text).toMatch(/nightshift_process_resident_memory_bytes \d+/);
    const final = await until('the 500 counted', async () => {
      const m = parse(
        await fetch(url).then(
          (r) => r.text(),
          () => '',
        ),
      );
      return (m.get('nightshift_requests_total{class="5xx"}') ?? 0) === 1 ? m : null;
    });
    expect(final.get('nightshift_credits_possibly_billed_total')).toBe(0);
    const r = await child.result;
    expect(r.code, r.stderr).toBe(0);
    // Only on the loopback address.
    expect(r.stdout).toContain(`metrics on http://127.0.0.1:${port}/metrics`);
  });
});
