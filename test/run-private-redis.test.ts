import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { useTempDir } from './helpers/temp-hooks.js';
import { redisAnswers } from '../src/redis/connect.js';
import { startPrivateRedis } from '../src/redis/private.js';
import { EnvironmentError } from '../src/errors.js';

describe('run without a Redis', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  // Port 1 never answers: `run` must fall back to a private redis-server.
  const noDefault = { NIGHTSHIFT_DEFAULT_REDIS: 'redis://127.0.0.1:1' };

  it('starts a private redis-server with its append-only file under the output folder, stops it, and resumes from it', async () => {
    const out = join(tmp.dir, 'out');
    const env = cliEnv(noDefault);
    const first = await runCli(['run', 'prompts/anime-sunset.txt', '--mock', '--out', out], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/starting a private redis-server/);
    const url = /"url":"(redis:\/\/127\.0\.0\.1:\d+)"/.exec(first.stdout)?.[1];
    expect(url).toBeDefined();
    expect(await redisAnswers(url!, 300)).toBe(false); // stopped at exit
    const aof = await readdir(join(out, '.redis'));
    expect(aof.some((f) => f.startsWith('appendonly'))).toBe(true);
    expect((await stat(join(out, 'mock', 'anime-sunset', 'manifest.jsonl'))).size).toBeGreaterThan(0);

    // The queue survived in the append-only file: nothing is added twice.
    const second = await runCli(['run', 'prompts/anime-sunset.txt', '--mock', '--out', out], env);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/added 0, already present 7/);
    const lines = (await readFile(join(out, 'mock', 'anime-sunset', 'manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(7);
  });

  it('exits 3 with instructions when there is no redis-server to start either', async () => {
    const env = cliEnv({ ...noDefault, PATH: '/nonexistent' });
    const res = await runCli(['run', 'prompts/anime-sunset.txt', '--mock', '--out', join(tmp.dir, 'out')], env);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/redis-server/);
    expect(res.stderr).toMatch(/docker compose up -d redis/);
  });

  it('exits 3 naming the URL (without its password) when the given Redis is unreachable', async () => {
    const env = cliEnv({ REDIS_URL: 'redis://user:s3cret@127.0.0.1:1' });
    const res = await runCli(['enqueue', 'prompts/anime-sunset.txt', '--mock', '--out', join(tmp.dir, 'out')], env);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/Redis is unreachable at redis:\/\/127\.0\.0\.1:1/);
    expect(res.stderr).not.toContain('s3cret');
  });
});

describe("the private Redis' password file", () => {
  const silentLog = pino({ level: 'silent' });
  const root = useTempDir();

  it('refuses a planted link, a FIFO or an oversized file there with an environment error naming it', async () => {
    const dir = join(root(), '.redis');
    await mkdir(dir, { mode: 0o700 });
    const file = join(dir, 'password');
    await writeFile(join(root(), 'elsewhere'), 'a'.repeat(40));
    await symlink(join(root(), 'elsewhere'), file);
    await expect(startPrivateRedis(dir, silentLog, '/nonexistent/redis-server')).rejects.toThrow(
      new RegExp(`${file} is a symbolic link`),
    );
    await rm(file);
    execFileSync('mkfifo', [file]);
    const fifo = startPrivateRedis(dir, silentLog, '/nonexistent/redis-server');
    await expect(fifo).rejects.toBeInstanceOf(EnvironmentError);
    await expect(fifo).rejects.toThrow(/FIFO/);
    await rm(file);
    await writeFile(file, 'f'.repeat(2000));
    await expect(startPrivateRedis(dir, silentLog, '/nonexistent/redis-server')).rejects.toThrow(/too large/);
  });
});
