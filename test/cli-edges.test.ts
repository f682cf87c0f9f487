/** The command line at its edges: output that stops being read, an --out that is not a folder. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliEnv, runCli, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

describe('the command line at its edges', () => {
  const redis = newRedis();
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('a reader that stops early (`| head`) ends the command quietly, exit 0', async () => {
    const child = startCli(['config'], cliEnv({}));
    // The reader is gone before the command writes its first line, as `head -0` is.
    child.stdout!.destroy();
    const res = await child.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toMatch(/EPIPE|\n\s+at /);
  });

  it('an --out that is a file: exit 3 naming it, nothing enqueued', async () => {
    const file = join(tmp.dir, 'p.txt');
    await writeFile(file, 'a fox\n');
    const notAFolder = join(tmp.dir, 'out.txt');
    await writeFile(notAFolder, 'mine\n');
    const prefix = randomPrefix();
    const r = await runCli(
      ['enqueue', file, '--mock', '--out', notAFolder],
      cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() }),
    );
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(notAFolder);
    expect(r.stderr).toMatch(/not a directory.*nothing was enqueued/);
    expect(await redis.keys(`*${prefix}*`)).toEqual([]);
  });
});
