import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMockApi } from '../src/mock-api/server.js';
import { cliEnv, ROOT, runCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { useProcessFixture } from './helpers/process-fixture.js';

interface Line {
  id: string;
  file: string | null;
  bytes: number | null;
  sha256: string | null;
  status: string;
  model: string;
  seed: number;
  index: number;
}

async function manifest(dir: string): Promise<Line[]> {
  const text = await readFile(join(dir, 'manifest.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
}

async function expectManifestMatchesFiles(batchDir: string, lines: Line[]) {
  for (const l of lines) {
    expect(l.status).toBe('succeeded');
    const bytes = await readFile(join(batchDir, l.file!));
    expect(bytes.length).toBe(l.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(l.sha256);
  }
}

describe('nightshift run, end to end as a child process', () => {
  const fx = useProcessFixture();
  const { redis } = fx;

  it('runs the anime sunset list on --mock, then a second run generates nothing', async () => {
    const env = cliEnv({ NIGHTSHIFT_PREFIX: fx.prefix, REDIS_URL: redisUrl() });
    const args = ['run', 'prompts/anime-sunset.txt', '--mock', '--out', fx.tmp.dir];
    const first = await runCli(args, env);
    expect(first.stderr + first.stdout).not.toMatch(/TypeError|ReferenceError/);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/manifest: .*manifest\.jsonl/);
    expect(first.stdout).toMatch(/gallery: .*index\.html/);

    const prompts = (await readFile(join(ROOT, 'prompts/anime-sunset.txt'), 'utf8'))
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    const batchDir = join(fx.tmp.dir, 'mock', 'anime-sunset'); // mock batches live apart from real ones
    const lines = await manifest(batchDir);
    expect(lines).toHaveLength(prompts.length);
    await expectManifestMatchesFiles(batchDir, lines);
    const images = (await readdir(join(batchDir, 'images'))).filter((f) => f.endsWith('.png'));
    expect(images).toHaveLength(prompts.length);
    expect(await readFile(join(batchDir, 'index.html'), 'utf8')).toContain('Sunset Glow');

    const second = await runCli(args, env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/added 0, already present 8|added 0, already present \d+/);
    expect(second.stdout).toMatch(/mock API served 0 requests/);
    // Nothing left to send: no "0 jobs: about 0 s" estimate.
    expect(second.stdout).not.toMatch(/^0 jobs: about/m);
    expect(await manifest(batchDir)).toEqual(lines);
  });

  for (const model of ['core', 'stable-diffusion-v1-6'] as const) {
    it(`runs against \`mock-api\`'s fake through STABILITY_API_HOST with ${model}, and a rerun calls the API zero times`, async () => {
      fx.mock = await startMockApi({ latencyMs: [5, 30] });
      const file = join(fx.tmp.dir, 'p.txt');
      await writeFile(file, 'A lighthouse on a cliff\nA red fox in snow, {dawn|dusk}\n');
      const env = cliEnv({
        NIGHTSHIFT_PREFIX: fx.prefix,
        REDIS_URL: redisUrl(),
        STABILITY_API_HOST: fx.mock.url,
        STABILITY_API_KEY: 'sk-test-key',
      });
      const args = ['run', file, '--model', model, '--queue', 'q', '--out', join(fx.tmp.dir, 'out')];
      const first = await runCli(args, env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout + first.stderr).not.toContain('sk-test-key');
      const batchDir = join(fx.tmp.dir, 'out', 'p');
      const lines = await manifest(batchDir);
      expect(lines).toHaveLength(3);
      expect(new Set(lines.map((l) => l.model))).toEqual(new Set([model]));
      await expectManifestMatchesFiles(batchDir, lines);
      const requests = fx.mock.stats.total;
      expect(fx.mock.stats.generations.size).toBe(3);

      const second = await runCli(args, env);
      expect(second.code, second.stderr).toBe(0);
      expect(fx.mock.stats.total).toBe(requests);
    });
  }

  it('with --json, stdout is one JSON object: what was added and how the run ended', async () => {
    const env = cliEnv({ NIGHTSHIFT_PREFIX: fx.prefix, REDIS_URL: redisUrl() });
    const file = join(fx.tmp.dir, 'j.txt');
    await writeFile(file, 'a lighthouse in fog\na red fox in snow\n');
    const res = await runCli(['run', file, '--mock', '--out', fx.tmp.dir, '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      batch: 'j',
      added: 2,
      result: { succeeded: 2, filtered: 0, failed: 0, left_queued: 0, exit_code: 0 },
    });
    // The lines for people went to stderr.
    expect(res.stderr).toMatch(/2 succeeded, 0 filtered, 0 failed/);
  });

  it('refuses a prompt file with a bad line, exit 2, naming file:line: field, and enqueues nothing', async () => {
    const file = join(fx.tmp.dir, 'bad.jsonl');
    await writeFile(file, '{"prompt":"ok one"}\n{"prompt":"two","steps":"many"}\n{"prompt":"three","colour":"red"}\n');
    const env = cliEnv({ NIGHTSHIFT_PREFIX: fx.prefix, REDIS_URL: redisUrl() });
    const res = await runCli(['enqueue', file, '--mock', '--out', fx.tmp.dir], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${file}:2: steps:`);
    expect(res.stderr).toContain(`${file}:3: colour:`);
    expect(await redis.keys(`${fx.prefix}*`)).toEqual([]);
  });
});
