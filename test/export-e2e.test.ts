import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

interface Line {
  id: string;
  file: string | null;
  prompt: string;
  status: string;
  seed: number;
}

describe('nightshift export on a batch made by nightshift run --mock', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir('nightshift-export-e2e-');
  });
  afterEach(async () => {
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  it('exports all three formats from a wildcard batch, the same bytes twice', async () => {
    const env = cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() });
    const out = join(tmp.dir, 'out');
    await mkdir(join(tmp.dir, 'wildcards'));
    await writeFile(join(tmp.dir, 'wildcards', 'beast.txt'), 'a fox\n# not this one\nan {old|arctic} owl\n');
    const prompts = join(tmp.dir, 'dusk.txt');
    await writeFile(prompts, '__beast__ at {dawn|dusk}\n');
    const run = await runCli(['run', prompts, '--mock', '--out', out], env);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toContain('batch dusk');
    expect(run.stdout).toContain('6 succeeded, 0 filtered, 0 failed');

    const manifest = (await readFile(join(out, 'mock', 'dusk', 'manifest.jsonl'), 'utf8')) // a mock batch's folder
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    expect(manifest.map((l) => l.prompt)).toEqual([
      'a fox at dawn',
      'a fox at dusk',
      'an old owl at dawn',
      'an old owl at dusk',
      'an arctic owl at dawn',
      'an arctic owl at dusk',
    ]);

    const exp = (format: string, to: string) =>
      runCli(
        ['export', '--batch', 'dusk', '--mock', '--format', format, '--to', to, '--out', out, '--shard-size', '4'],
        env,
      );
    for (const format of ['imagefolder', 'webdataset', 'captions']) {
      const to = join(tmp.dir, format);
      const first = await exp(format, to);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`exported 6 images of batch dusk as ${format} to ${to}`);
      const before = await hashes(to);
      const again = await exp(format, to);
      expect(again.code, again.stderr).toBe(0);
      expect(await hashes(to)).toEqual(before);
    }

    const meta = (await readFile(join(tmp.dir, 'imagefolder', 'train', 'metadata.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file_name: string; text: string; seed: number });
    expect(meta.map((m) => [m.text, m.seed])).toEqual(manifest.map((l) => [l.prompt, l.seed]));
    for (const m of meta) {
      expect(await readFile(join(tmp.dir, 'imagefolder', 'train', m.file_name))).toEqual(
        await readFile(join(out, 'mock', 'dusk', 'images', m.file_name)),
      );
    }

    const shards = (await readdir(join(tmp.dir, 'webdataset'))).filter((n) => n.endsWith('.tar')).sort();
    expect(shards).toEqual(['00000.tar', '00001.tar']);
    const listed = execFileSync('tar', ['-tf', join(tmp.dir, 'webdataset', '00001.tar')], { encoding: 'utf8' });
    expect(listed.trim().split('\n')).toHaveLength(2 * 3);

    for (const l of manifest) {
      const name = l.file!.replace('images/', '');
      expect(await readFile(join(tmp.dir, 'captions', name.replace(/\.png$/, '.txt')), 'utf8')).toBe(l.prompt);
    }
  });

  it('refuses a bad batch name and a batch that is not there (exit 2), naming the flag', async () => {
    const env = cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() });
    const out = join(tmp.dir, 'out');
    const bad = await runCli(['export', '--batch', '../x', '--format', 'captions', '--to', tmp.dir, '--out', out], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^nightshift: --batch: "\.\.\/x" is not a valid batch name/);
    const missing = await runCli(
      ['export', '--batch', 'never', '--format', 'captions', '--to', join(tmp.dir, 'c'), '--out', out],
      env,
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`nightshift: --batch: there is no batch "never" (no folder ${join(out, 'never')})\n`);
    const format = await runCli(['export', '--batch', 'never', '--format', 'zip', '--to', tmp.dir], env);
    expect(format.code).toBe(2);
  });
});

async function hashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else
        out[rel + e.name] = createHash('sha256')
          .update(await readFile(join(d, e.name)))
          .digest('hex');
    }
  };
  await walk(dir, '');
  return out;
}
