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

/** What a prompt file holds reaches a terminal only as text: no escape sequence passes through. */
describe('control characters in prompt files', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(() => tmp.cleanup());

  const enqueue = (file: string) => runCli(['enqueue', file, '--mock', '--dry-run'], cliEnv({}), 20_000);
  const ESC = '\u001b';

  it('a prompt or negative prompt holding one is refused (exit 2, file:line: field, the character named)', async () => {
    const file = join(tmp.dir, 'p.jsonl');
    await writeFile(
      file,
      [
        JSON.stringify({ prompt: `${ESC}]0;PWNED\u0007${ESC}[2Ja fox` }),
        JSON.stringify({ prompt: 'an owl', negative_prompt: `blur\u0000` }),
        JSON.stringify({ prompt: 'a heron\tat dawn' }),
        '',
      ].join('\n'),
    );
    const r = await enqueue(file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1: prompt: contains the control character U+001B at character 1`);
    expect(r.stderr).toContain(`${file}:2: negative_prompt: contains the control character U+0000 at character 5`);
    expect(r.stderr).not.toContain(`${file}:3:`);
    expect(r.stderr).not.toContain(ESC);
  });

  it('a .txt with old Mac line endings (a carriage return alone) is refused, not read as one prompt', async () => {
    const file = join(tmp.dir, 'mac.txt');
    await writeFile(file, 'line one\rline two\rline three\nfine\r\n');
    const r = await enqueue(file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1: prompt: holds a carriage return without a line feed`);
    expect(r.stderr).not.toContain(`${file}:2:`);
  });

  it('an error quoting a field name or a CSV header shows its control characters escaped', async () => {
    const jsonl = join(tmp.dir, 'k.jsonl');
    // Escaped in the JSON text, a control character once parsed.
    await writeFile(jsonl, `${JSON.stringify({ prompt: 'a fox', [`${ESC}[31mevil`]: 1 })}\n`);
    const csv = join(tmp.dir, 'h.csv');
    await writeFile(csv, `prompt,${ESC}[31mcol\na fox,1\n`);
    for (const file of [jsonl, csv]) {
      const r = await enqueue(file);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toContain(ESC);
      expect(r.stderr).toContain('\\u001b[31m');
    }
  });
});
