import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PromptFileError } from '../src/errors.js';
import { runPreflight } from '../src/prompts/preflight.js';
import type { PromptSpec } from '../src/prompts/types.js';
import { enqueuePromptFiles, type EnqueueOptions } from '../src/queue/enqueue.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  tmp = await tempDir('nightshift-preflight-');
});
afterEach(async () => {
  await tmp.cleanup();
});

const logger = pino({ level: 'silent' });

async function dryRun(text: string, extra: Partial<EnqueueOptions> = {}) {
  const file = join(tmp.dir, 'p.jsonl');
  await writeFile(file, text);
  const opts: EnqueueOptions = { files: [file], defaults: {}, maxJobs: 10_000, dryRun: true, force: false, ...extra };
  return { file, run: () => enqueuePromptFiles(opts, { logger, api: 'mock', out: tmp.dir }) };
}

function spec(prompt: string): PromptSpec {
  return {
    source: 'f.txt',
    line: 1,
    prompt,
    negative_prompt: null,
    model: 'core',
    params: { output_format: 'png' },
    seed: null,
    samples: 1,
  };
}

const lines = (...rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('pre-flight: English only on v2beta models', () => {
  it('tells scripts apart and leaves Latin text alone', () => {
    const scriptOf = (prompt: string): string | null => {
      const [p] = runPreflight({ specs: [spec(prompt)], jobs: 1 }).problems;
      return p ? /^has (.+) text;/.exec(p.message)![1]! : null;
    };
    expect(scriptOf('一只猫坐在屋顶上')).toBe('Han (Chinese/Japanese)');
    expect(scriptOf('ねこ')).toBe('Hiragana/Katakana (Japanese)');
    expect(scriptOf('кошка на крыше')).toBe('Cyrillic');
    expect(scriptOf('고양이')).toBe('Hangul (Korean)');
    expect(scriptOf('قطة')).toBe('Arabic');
    expect(scriptOf('a café, naïve, Straße, 1990s — 50% off!')).toBeNull();
    expect(scriptOf('cat 🐱 at dawn')).toBeNull();
  });

  it('warns per line, naming file, line and field; v1 engines are not checked', async () => {
    const { file, run } = await dryRun(
      lines(
        { prompt: 'a cat on a roof' },
        { prompt: '{一只猫|一只狗}在屋顶上' },
        { prompt: 'a dog', negative_prompt: 'размытый' },
        { prompt: '一只猫', model: 'stable-diffusion-xl-1024-v1-0' },
      ),
    );
    const s = await run();
    expect(s.warnings).toEqual([
      `${file}:2: prompt: has Han (Chinese/Japanese) text; model core accepts English only (the API would answer 422 invalid_language)`,
      `${file}:3: negative_prompt: has Cyrillic text; model core accepts English only (the API would answer 422 invalid_language)`,
    ]);
    expect(s.jobs).toBe(5);
  });

  it('strict refuses the batch with the same problems (exit 2)', async () => {
    const { file, run } = await dryRun(
      lines({ prompt: 'fine' }, { prompt: 'ein Hund', model: 'ultra' }, { prompt: 'кот' }),
      {
        strict: true,
      },
    );
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PromptFileError);
    expect((err as PromptFileError).exitCode).toBe(2);
    expect((err as PromptFileError).problems).toEqual([
      expect.objectContaining({ file, line: 3, field: 'prompt', message: expect.stringMatching(/^has Cyrillic text/) }),
    ]);
  });

  it('a check added beside the defaults is run too (the hook for batch-wide checks)', async () => {
    const { run } = await dryRun(lines({ prompt: 'a' }, { prompt: 'b' }));
    const s = await run();
    expect(s.warnings).toEqual([]);
    const tooBig = runPreflight({ specs: [], jobs: 5 }, [
      ({ jobs }) => [{ file: '<command line>', line: 0, field: 'window', message: `${jobs} jobs will not fit` }],
    ]);
    expect(tooBig.warnings).toEqual(['<command line>:0: window: 5 jobs will not fit']);
  });

  it('caps what it prints', () => {
    const specs = Array.from({ length: 30 }, (_, i) => ({ ...spec('猫'), line: i + 1 }));
    const r = runPreflight({ specs, jobs: 30 });
    expect(r.problems).toHaveLength(30);
    expect(r.warnings).toHaveLength(21);
    expect(r.warnings[20]).toBe('… and 10 more pre-flight warnings');
  });
});

describe('enqueue --dry-run as a child process', () => {
  it('prints the count, the first expansions and the pre-flight warnings', async () => {
    const file = join(tmp.dir, 'night.txt');
    await writeFile(file, 'a {red|blue} {cat|dog|owl}\n一只{猫|狗}\n');
    const r = await runCli(['enqueue', file, '--mock', '--dry-run'], cliEnv({}));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('dry run: batch night: 8 prompts → 8 jobs');
    expect(r.stdout).toContain(
      'first 5 of 8 prompts:\n  a red cat\n  a red dog\n  a red owl\n  a blue cat\n  a blue dog\n',
    );
    expect(r.stdout).toContain(`warning: ${file}:2: prompt: has Han (Chinese/Japanese) text`);
    const json = await runCli(['enqueue', file, '--mock', '--dry-run', '--json'], cliEnv({}));
    expect(JSON.parse(json.stdout)).toMatchObject({
      prompts: 8,
      examples: ['a red cat', 'a red dog', 'a red owl', 'a blue cat', 'a blue dog'],
    });
  });

  it('refuses {a|b} ×1100 with a finite count (exit 2), without building it', async () => {
    const file = join(tmp.dir, 'huge.txt');
    await writeFile(file, 'ok\n' + '{a|b}'.repeat(1100) + '\n');
    const r = await runCli(['enqueue', file, '--mock', '--dry-run', '--max-jobs', '10000'], cliEnv({}));
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `nightshift: ${file}:0: prompts: would make more than 10^300 prompts after expanding variants, more than the limit of 10000\n`,
    );
  });

  it('a grammar error is file:line: prompt: problem, exit 2', async () => {
    const file = join(tmp.dir, 'bad.txt');
    await writeFile(file, 'fine\n{2$$a|b\n{3$$a|b}\n');
    const r = await runCli(['enqueue', file, '--mock', '--dry-run'], cliEnv({}));
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `nightshift: ${file}:2: prompt: unclosed "{" at column 1 (write \\{ for a literal brace)\n` +
        `${file}:3: prompt: the group at column 1 takes 3 distinct choices but has only 2\n`,
    );
  });
});
