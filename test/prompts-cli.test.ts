import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

/** The expansion flags through the real command line (dry runs: nothing reaches Redis). */
describe('enqueue: --wildcards, --variants, --count and --strict', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(() => tmp.cleanup());

  const dryRun = (args: string[], env: Record<string, string> = {}) =>
    runCli(['enqueue', ...args, '--mock', '--dry-run', '--json'], cliEnv(env), 20_000);

  it('reads wildcards from --wildcards or NIGHTSHIFT_WILDCARDS, and draws --count prompts at random', async () => {
    const wc = join(tmp.dir, 'elsewhere');
    await mkdir(wc);
    await writeFile(join(wc, 'animal.txt'), 'fox\nowl\nheron\n');
    const file = join(tmp.dir, 'p.txt');
    await writeFile(file, 'a __animal__ under a {red|blue|green} lantern\n');
    const all = await dryRun([file, '--wildcards', wc]);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ jobs: 9 });
    const fromEnv = await dryRun([file], { NIGHTSHIFT_WILDCARDS: wc });
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ jobs: 9 });
    const random = await dryRun([file, '--wildcards', wc, '--variants', 'random', '--count', '4']);
    expect(JSON.parse(random.stdout)).toMatchObject({ jobs: 4 });
    const again = await dryRun([file, '--wildcards', wc, '--variants', 'random', '--count', '4']);
    expect(JSON.parse(again.stdout).examples).toEqual(JSON.parse(random.stdout).examples);
  });

  it('refuses --count without --variants random, and a missing wildcard with file and line', async () => {
    const file = join(tmp.dir, 'p.txt');
    await writeFile(file, '# a comment\na __nowhere__ at dusk\n');
    const count = await dryRun([file, '--count', '3']);
    expect(count.code).toBe(2);
    expect(count.stderr).toMatch(/--count: only with --variants random/);
    const missing = await dryRun([file, '--wildcards', tmp.dir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/p\.txt:2: prompt: .*nowhere/);
  });

  it('warns of a non-English prompt for a v2beta model, and --strict refuses it', async () => {
    const file = join(tmp.dir, 'zh.txt');
    await writeFile(file, 'a lighthouse\n夕焼けの灯台\n');
    const warned = await dryRun([file]);
    expect(warned.code, warned.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(warned.stdout).warnings)).toMatch(/zh\.txt:2/);
    const strict = await dryRun([file, '--strict']);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/zh\.txt:2: prompt: /);
  });
});
