import { describe, expect, it } from 'vitest';
import { formatCount } from '../src/prompts/dynamic/count.js';
import { createExpander, type ExpansionOptions } from '../src/prompts/dynamic/expand.js';
import { useFixtures } from './prompts-helpers.js';

const fx = useFixtures();

function expander(opts: ExpansionOptions = {}) {
  return createExpander(opts).forFile('prompts.txt');
}
function expand(template: string, opts: ExpansionOptions = {}): string[] {
  const r = expander(opts)(template);
  if (!r.ok) throw new Error(r.message);
  return [...r.prompts()];
}
function count(template: string): bigint {
  const r = expander()(template);
  if (!r.ok) throw new Error(r.message);
  return r.count;
}
function problem(template: string): string {
  const r = expander()(template);
  if (r.ok) throw new Error(`expected a problem, got ${r.count} prompts`);
  return r.message;
}

describe('Dynamic Prompts syntax, combinatorial', () => {
  it('{N$$…} makes every combination of N distinct choices, joined by ", "', () => {
    expect(expand('likes {2$$red|green|blue}')).toEqual(['likes red, green', 'likes red, blue', 'likes green, blue']);
    expect(count('{2$$a|b|c|d}')).toBe(6n);
  });

  it('{N-M$$…} takes every size in the range, smallest first', () => {
    expect(expand('{1-2$$a|b|c}')).toEqual(['a', 'b', 'c', 'a, b', 'a, c', 'b, c']);
    expect(expand('{-2$$a|b}')).toEqual(['a', 'b', 'a, b']);
    expect(expand('{2-$$a|b|c}')).toEqual(['a, b', 'a, c', 'b, c', 'a, b, c']);
    expect(count('{1-3$$a|b|c|d|e}')).toBe(5n + 10n + 10n);
  });

  it('{N$$joiner$$…} joins with the given text', () => {
    expect(expand('{2$$ and $$cats|dogs|owls}')).toEqual(['cats and dogs', 'cats and owls', 'dogs and owls']);
    expect(expand('{2$$$$a|b}')).toEqual(['ab']);
  });

  it('accepts weights and ignores them when combining', () => {
    expect(expand('{0.5::a|2::b|c}')).toEqual(['a', 'b', 'c']);
    expect(expand('{.25::a|b}')).toEqual(['a', 'b']);
  });

  it('nests groups, inner ones varying with their choice', () => {
    expect(expand('{a|{b|c}}')).toEqual(['a', 'b', 'c']);
    expect(expand('{x {1|2}|y} z')).toEqual(['x 1 z', 'x 2 z', 'y z']);
    expect(expand('{2$$a|{b|c}}')).toEqual(['a, b', 'a, c']);
    expect(count('{a|{b|c}} {d|{e|{f|g}}}')).toBe(3n * 4n);
  });

  it('keeps escapes literal inside and outside groups', () => {
    expect(expand('\\{{x|y}\\} \\| {a\\|b|c}')).toEqual(['{x} | a|b', '{x} | c', '{y} | a|b', '{y} | c']);
  });

  it('counts agree with what is made', () => {
    for (const t of ['{1-3$$a|{b|c}|d} {e|f}', '{2$$ and $$x|{y|z}|w}', '{0-2$$a|b|c}']) {
      expect(BigInt(expand(t).length), t).toBe(count(t));
    }
  });

  it('counts {a|b} repeated 1100 times as a finite number, at once', () => {
    const n = count('{a|b}'.repeat(1100));
    expect(typeof n).toBe('bigint');
    expect(formatCount(n)).toBe('more than 10^300');
    expect(formatCount(2n ** 60n)).toBe('about 1.1 × 10^18');
    expect(formatCount(1001n)).toBe('1001');
    // Exact below the cap.
    expect(count('{a|b}'.repeat(900))).toBe(2n ** 900n);
  });

  it('makes the first prompts of a huge product without building it', () => {
    const r = expander()('{a|b}'.repeat(1100));
    if (!r.ok) throw new Error(r.message);
    const first: string[] = [];
    for (const p of r.prompts()) {
      first.push(p);
      if (first.length === 3) break;
    }
    expect(first.map((p) => p.slice(-3))).toEqual(['aaa', 'aab', 'aba']);
  });
});

describe('Dynamic Prompts syntax errors', () => {
  it('an unclosed brace names its column', () => {
    expect(problem('a {b|c')).toBe('unclosed "{" at column 3 (write \\{ for a literal brace)');
    expect(problem('{a|{b|c}')).toMatch(/^unclosed "\{" at column 1/);
  });

  it('a bad $$ spec says what is accepted', () => {
    expect(problem('{x$$a|b}')).toBe(
      'bad "$$" spec "x$$" in the group at column 1: use {N$$…}, {N-M$$…} or {N$$joiner$$…}',
    );
    expect(problem('{$$a|b}')).toMatch(/^bad "\$\$" spec/);
    expect(problem('{3-1$$a|b|c}')).toBe('range 3-1 is backwards in the group at column 1');
  });

  it('a pick larger than the choices is an error, not quietly fewer', () => {
    expect(problem('x {4$$a|b|c}')).toBe('the group at column 3 takes 4 distinct choices but has only 3');
    expect(problem('{1-5$$a|b}')).toBe('the group at column 1 takes up to 5 distinct choices but has only 2');
    expect(problem('{3-$$a|b}')).toBe('the group at column 1 takes at least 3 distinct choices but has only 2');
  });

  it('refuses nesting deep enough to overflow the stack', () => {
    expect(problem('{'.repeat(5000) + 'a' + '}'.repeat(5000))).toMatch(/nested deeper than 64 levels/);
  });

  it('refuses a combination count that would take minutes to compute', () => {
    const choices = Array.from({ length: 3000 }, (_, i) => `c${i}`).join('|');
    expect(problem(`{1-1000$$${choices}}`)).toMatch(/too many combinations to count/);
  });
});

describe('random mode', () => {
  const template = '{cat|dog|fox|owl} in {red|green|blue|white|black} {1|2|3|4|5}';

  it('draws count distinct prompts, the same for the same seed key', () => {
    const a = expand(template, { variants: 'random', count: 6, seedKey: 'batch-1' });
    expect(a).toHaveLength(6);
    expect(new Set(a).size).toBe(6);
    expect(expand(template, { variants: 'random', count: 6, seedKey: 'batch-1' })).toEqual(a);
    expect(expand(template, { variants: 'random', count: 6, seedKey: 'batch-2' })).not.toEqual(a);
    const all = new Set(expand(template));
    for (const p of a) expect(all.has(p)).toBe(true);
  });

  it('follows the weights', () => {
    const picks = { cat: 0, dog: 0 };
    // One draw per seed key: 2000 independent draws.
    for (let i = 0; i < 2000; i++) {
      const one = createExpander({ variants: 'random', count: 1, seedKey: `w${i}` }).forFile('p.txt')(
        '{0.9::cat|0.1::dog} x {a|b|c}',
      );
      if (!one.ok) throw new Error(one.message);
      const [p] = [...one.prompts()];
      picks[p!.startsWith('cat') ? 'cat' : 'dog']++;
    }
    // Expected 1800 cats; 1700 is more than 7 standard deviations (σ ≈ 13) below.
    expect(picks.cat).toBeGreaterThan(1700);
    expect(picks.dog).toBeGreaterThan(100);
  });

  it('a zero weight is never drawn', () => {
    const got = expand('{0::never|ok|fine} {x|y|z}', { variants: 'random', count: 5, seedKey: 'z' });
    expect(got).toHaveLength(5);
    for (const p of got) expect(p).not.toMatch(/never/);
  });

  it('draws a count from the range, then distinct choices', () => {
    const got = expand('{1-3$$a|b|c|d|e|f}', { variants: 'random', count: 20, seedKey: 'r' });
    for (const p of got) {
      const parts = p.split(', ');
      expect(parts.length).toBeGreaterThanOrEqual(1);
      expect(parts.length).toBeLessThanOrEqual(3);
      expect(new Set(parts).size).toBe(parts.length);
    }
  });

  it('gives every prompt, in order, when the template makes no more than count', () => {
    expect(expand('{a|b} {c|d}', { variants: 'random', count: 10, seedKey: 'k' })).toEqual([
      'a c',
      'a d',
      'b c',
      'b d',
    ]);
  });

  it('refuses a count that is not a whole number', () => {
    expect(() => createExpander({ variants: 'random', count: 0 })).toThrow(/--count/);
    expect(() => createExpander({ variants: 'random', count: 1.5 })).toThrow(/--count/);
  });

  it('in a prompt file: each line draws its own, seeded by the batch', async () => {
    const text = '{a|b|c|d|e|f|g} one\n{a|b|c|d|e|f|g} two\n';
    const opts = { expansion: { variants: 'random' as const, count: 3, seedKey: 'night' } };
    const r = await fx.load('p.txt', text, {}, opts);
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => s.line)).toEqual([1, 1, 1, 2, 2, 2]);
    const again = await fx.load('p.txt', text, {}, opts);
    expect(again.specs.map((s) => s.prompt)).toEqual(r.specs.map((s) => s.prompt));
  });
});
