/**
 * Hostile 200s against a real `nightshift work` process: 512 MiB bodies must not take the worker's
 * memory with them, and neither they nor PNG magic followed by garbage may be recorded as a success.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMockApi } from '../src/mock-api/server.js';
import type { Fault } from '../src/mock-api/types.js';
import { cliEnv, runCli, startCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { useProcessFixture } from './helpers/process-fixture.js';

const FAST = ['--backoff', '0.01', '--breaker-threshold', '1000', '--rate', '1000/1', '--concurrency', '4'];

/** Peak resident memory of a live process, in bytes (VmHWM), or null once it has gone. */
async function peakRss(pid: number): Promise<number | null> {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

interface Line {
  status: string;
  file: string | null;
  error: { class: string; name: string } | null;
}

describe('hostile 200s against a worker process', () => {
  const fx = useProcessFixture();

  /** Four jobs, one `work --exit-when-idle` process; its peak RSS sampled until it exits. */
  async function workAgainst(fault: Fault) {
    let generations = 0;
    fx.mock = await startMockApi({
      fault: ({ model }) => {
        if (model === '') return undefined;
        generations++;
        return fault;
      },
    });
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: fx.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: fx.mock.url,
      STABILITY_API_KEY: 'sk-hostile-bodies',
    });
    const file = join(fx.tmp.dir, 'big.txt');
    await writeFile(file, [1, 2, 3, 4].map((i) => `a lighthouse number ${i}`).join('\n'));
    const out = join(fx.tmp.dir, 'out');
    const enq = await runCli(['enqueue', file, '--queue', 'q', '--batch', 'big', '--model', 'core', '--out', out], env);
    expect(enq.code, enq.stderr).toBe(0);
    const child = startCli(['work', '--exit-when-idle', '--queue', 'q', '--out', out, ...FAST], env);
    let peak = 0;
    const sampler = setInterval(() => {
      void peakRss(child.pid!).then((p) => (peak = Math.max(peak, p ?? 0)));
    }, 20);
    const res = await child.result;
    clearInterval(sampler);
    const batchDir = join(out, 'big');
    const lines = (await readFile(join(batchDir, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    const images = (await readdir(join(batchDir, 'images'))).filter((f) => !f.endsWith('.json'));
    return { res, peak, lines, images, generations };
  }

  it('four 512 MiB bodies: worker RSS stays under 400 MB and nothing is recorded as a success', async () => {
    const { res, peak, lines, images, generations } = await workAgainst({ kind: 'huge', chunked: true });
    expect(res.signal, res.stderr).toBeNull();
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(400 * 1000 * 1000);
    expect(lines).toHaveLength(4);
    for (const l of lines)
      expect(l).toMatchObject({
        status: 'failed',
        file: null,
        error: { class: 'transient', name: 'response_too_large' },
      });
    expect(images).toEqual([]);
    expect(fx.mock!.stats.generations.size).toBe(0);
    // Each job used its 5 attempts: a transient failure, retried, and never mistaken for a success.
    expect(generations).toBe(20);
  });

  it('PNG magic followed by garbage: no success, no image file', async () => {
    const { res, lines, images, generations } = await workAgainst({ kind: 'png-garbage' });
    expect(res.signal, res.stderr).toBeNull();
    expect(lines).toHaveLength(4);
    for (const l of lines)
      expect(l).toMatchObject({
        status: 'failed',
        file: null,
        error: { class: 'transient', name: 'malformed_response' },
      });
    expect(images).toEqual([]);
    expect(generations).toBe(20);
  });
});
