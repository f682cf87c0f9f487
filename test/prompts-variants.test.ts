import { describe, expect, it } from 'vitest';
import { createExpander } from '../src/prompts/dynamic/expand.js';
import { jsonl, useFixtures } from './prompts-helpers.js';

const expandOne = createExpander().forFile('prompts.txt');
function expandVariants(template: string): string[] {
  const r = expandOne(template);
  if (!r.ok) throw new Error(r.message);
  return [...r.prompts()];
}
function countVariants(template: string): bigint {
  const r = expandOne(template);
  if (!r.ok) throw new Error(r.message);
  return r.count;
}

const fx = useFixtures();

describe('expandVariants', () => {
  it('expands one group to one prompt per choice', () => {
    expect(expandVariants('a cat at {dawn|noon|dusk}')).toEqual(['a cat at dawn', 'a cat at noon', 'a cat at dusk']);
  });

  it('makes every combination, the first group varying slowest', () => {
    expect(expandVariants('{red|blue} {cat|dog|fox}')).toEqual([
      'red cat',
      'red dog',
      'red fox',
      'blue cat',
      'blue dog',
      'blue fox',
    ]);
  });

  it('leaves a prompt without groups unchanged', () => {
    expect(expandVariants('Sunset Glow,Anime Kids')).toEqual(['Sunset Glow,Anime Kids']);
  });

  it('keeps a brace group without | literal', () => {
    expect(expandVariants('a {single} word')).toEqual(['a {single} word']);
    expect(countVariants('a {single} word')).toBe(1n);
  });

  it('treats \\{ as a literal brace', () => {
    expect(expandVariants('json \\{a|b} here')).toEqual(['json {a|b} here']);
    expect(countVariants('json \\{a|b} here')).toBe(1n);
    expect(expandVariants('\\{{x|y}\\}')).toEqual(['{x}', '{y}']);
  });

  it('allows \\| inside a choice', () => {
    expect(expandVariants('{a\\|b|c}')).toEqual(['a|b', 'c']);
  });

  it('allows empty choices and tidies the spaces they leave', () => {
    expect(expandVariants('a {big|} cat')).toEqual(['a big cat', 'a cat']);
    expect(expandVariants('{a|}')).toEqual(['a', '']);
  });
});

describe('countVariants', () => {
  it('counts without expanding', () => {
    expect(countVariants('plain')).toBe(1n);
    expect(countVariants('{a|b} {c|d|e}')).toBe(6n);
    expect(countVariants('{a|}')).toBe(2n);
    // 10^20 combinations: counting must not try to build them, and stays exact.
    expect(countVariants('{0|1|2|3|4|5|6|7|8|9}'.repeat(20))).toBe(10n ** 20n);
  });

  it('agrees with expandVariants', () => {
    const p = '{a|b|c} x {d|e} {f|g|h|i}';
    expect(BigInt(expandVariants(p).length)).toBe(countVariants(p));
  });
});

describe('variants in prompt files', () => {
  it('expands into specs in file, line and variant order', async () => {
    const r = await fx.load('p.txt', 'first\n{a|b} {c|d}\nlast\n');
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([
      [1, 'first'],
      [2, 'a c'],
      [2, 'a d'],
      [2, 'b c'],
      [2, 'b d'],
      [3, 'last'],
    ]);
    expect(r.lines).toBe(3);
  });

  it('gives each variant of a line with an id its own id', async () => {
    const r = await fx.load('p.jsonl', jsonl({ prompt: '{x|y}', id: 'shot' }, { prompt: 'z', id: 'solo' }));
    expect(r.specs.map((s) => s.id)).toEqual(['shot.1', 'shot.2', 'solo']);
  });

  it('works in CSV', async () => {
    const r = await fx.load('p.csv', 'prompt,model\n"sky at {dawn|dusk}, wide",core\n');
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([
      [2, 'sky at dawn, wide'],
      [2, 'sky at dusk, wide'],
    ]);
  });

  it('an empty variant is an error', async () => {
    const r = await fx.load('p.txt', 'ok\n{a| }\n');
    expect(r.messages).toEqual([`${r.file}:2: prompt: variant 2 of 2 is empty`]);
    expect(r.specs).toEqual([]);
  });

  it('checks each variant against the model prompt limit', async () => {
    const long = 'x'.repeat(1999);
    const r = await fx.load('p.jsonl', jsonl({ prompt: `${long}{a|bb}`, model: 'stable-diffusion-v1-6' }));
    expect(r.messages).toEqual([
      `${r.file}:1: prompt: variant 2 of 2: must be at most 2000 characters for model stable-diffusion-v1-6 (got 2001)`,
    ]);
  });

  it('refuses more prompts than maxPrompts with one problem, before expanding', async () => {
    const r = await fx.load(
      'p.txt',
      'a\n{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}{0|1|2|3|4|5|6|7|8|9}\n',
      {},
      { maxPrompts: 1000 },
    );
    expect(r.messages).toEqual([
      `${r.file}:0: prompts: would make 1001 prompts after expanding variants, more than the limit of 1000`,
    ]);
    expect(r.specs).toEqual([]);
  });

  it('accepts exactly maxPrompts', async () => {
    const r = await fx.load('p.txt', '{a|b}\n{c|d}\n', {}, { maxPrompts: 4 });
    expect(r.problems).toEqual([]);
    expect(r.specs).toHaveLength(4);
  });

  it('refuses a runaway product without running out of memory', async () => {
    const r = await fx.load('p.txt', '{0|1|2|3|4|5|6|7|8|9}'.repeat(15) + '\n', {}, { maxPrompts: 10000 });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ line: 0, field: 'prompts' });
  });
});
