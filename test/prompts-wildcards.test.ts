import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatProblem } from '../src/errors.js';
import { loadPromptFiles, type LoadOptions } from '../src/prompts/load.js';
import { ROOT } from './helpers/cli.js';
import { tempDir, type TempDir } from './helpers/temp.js';

let dir = '';
let tmp: TempDir | undefined;
beforeEach(async () => {
  tmp = await tempDir('nightshift-wildcards-');
  dir = tmp.dir;
});
afterEach(() => tmp?.cleanup());

/** Writes files (paths relative to the temp dir, folders made as needed). */
async function files(tree: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(tree)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
}

async function load(prompts: string, opts: LoadOptions = {}, name = 'p.txt') {
  await files({ [name]: prompts });
  const file = join(dir, name);
  const r = await loadPromptFiles([file], {}, opts);
  return { file, prompts: r.specs.map((s) => s.prompt), messages: r.problems.map(formatProblem) };
}

describe('wildcards', () => {
  it('__name__ takes each line of name.txt beside the prompt file, skipping blanks, comments and repeats', async () => {
    await files({ 'wildcards/animal.txt': '# animals\ncat\n\n  dog  \ncat\n#owl\nfox\n' });
    const r = await load('a __animal__ at night\n');
    expect(r.messages).toEqual([]);
    expect(r.prompts).toEqual(['a cat at night', 'a dog at night', 'a fox at night']);
  });

  it('finds prompts/wildcards/ beside the file too, and --wildcards overrides both', async () => {
    await files({ 'prompts/wildcards/c.txt': 'red\n', 'elsewhere/c.txt': 'blue\n' });
    expect((await load('__c__\n')).prompts).toEqual(['red']);
    expect((await load('__c__\n', { expansion: { wildcardsDir: join(dir, 'elsewhere') } })).prompts).toEqual(['blue']);
  });

  it('nested paths and globs (* one level, ** any depth), in path order', async () => {
    await files({
      'wildcards/colors/warm.txt': 'red\namber\n',
      'wildcards/colors/cool.txt': 'teal\n',
      'wildcards/colors/deep/night.txt': 'ink\n',
      'wildcards/colors.txt': 'not me\n',
    });
    expect((await load('__colors/warm__\n')).prompts).toEqual(['red', 'amber']);
    expect((await load('__colors/*__\n')).prompts).toEqual(['teal', 'red', 'amber']);
    expect((await load('__colors/**__\n')).prompts).toEqual(['teal', 'ink', 'red', 'amber']);
    expect((await load('__colors/w*__\n')).prompts).toEqual(['red', 'amber']);
  });

  it('wildcard lines may hold variants and other wildcards', async () => {
    await files({
      'wildcards/scene.txt': 'a {quiet|busy} __place__\nthe sea\n',
      'wildcards/place.txt': 'street\n{2$$ and $$hill|wood|lake}\n',
    });
    expect((await load('__scene__, wide\n')).prompts).toEqual([
      'a quiet street, wide',
      'a quiet hill and wood, wide',
      'a quiet hill and lake, wide',
      'a quiet wood and lake, wide',
      'a busy street, wide',
      'a busy hill and wood, wide',
      'a busy hill and lake, wide',
      'a busy wood and lake, wide',
      'the sea, wide',
    ]);
  });

  it('{N$$__name__} takes N distinct lines of the wildcard', async () => {
    await files({ 'wildcards/f.txt': 'mint\nplum\nfig\n' });
    expect((await load('{2$$__f__}\n')).prompts).toEqual(['mint, plum', 'mint, fig', 'plum, fig']);
    expect((await load('x\n{4$$__f__}\n')).messages).toEqual([
      `${join(dir, 'p.txt')}:2: prompt: the group at column 1 takes 4 distinct choices but has only 3`,
    ]);
  });

  it('a cycle is an error naming the chain, at the prompt line', async () => {
    await files({ 'wildcards/a.txt': 'x __b__\n', 'wildcards/b.txt': 'fine\n__c__\n', 'wildcards/c.txt': '__a__\n' });
    const r = await load('ok\nthen __a__\n');
    expect(r.messages).toEqual([
      `${r.file}:2: prompt: wildcards refer to each other in a cycle: __a__ → __b__ → __c__ → __a__`,
    ]);
    await files({ 'wildcards/self.txt': 'me and __self__\n' });
    expect((await load('__self__\n')).messages[0]).toMatch(/cycle: __self__ → __self__$/);
  });

  it('a missing wildcard file names the prompt file, line and what was looked for', async () => {
    await files({ 'wildcards/a.txt': 'x\n' });
    const r = await load('one\ntwo __nope__\n');
    expect(r.messages).toEqual([
      `${r.file}:2: prompt: wildcard __nope__ not found: no nope.txt in ${join(dir, 'wildcards')}`,
    ]);
    expect((await load('__gone/*__\n')).messages[0]).toMatch(/wildcard __gone\/\*__ matches no file in /);
  });

  it('with no wildcards folder at all, says where it looked and how to give one', async () => {
    const r = await load('__x__\n');
    expect(r.messages[0]).toBe(
      `${r.file}:1: prompt: wildcard __x__ needs a wildcards folder, and there is none ` +
        `(looked for ${join(dir, 'wildcards')} and ${join(dir, 'prompts/wildcards')}); create one or pass --wildcards DIR`,
    );
  });

  it('a syntax error inside a wildcard file names that file and line', async () => {
    await files({ 'wildcards/w.txt': 'good\n\nbad {one|two\n' });
    const r = await load('__w__\n');
    expect(r.messages).toEqual([
      `${r.file}:1: prompt: in __w__ (w.txt:3): unclosed "{" at column 5 (write \\{ for a literal brace)`,
    ]);
  });

  it('an empty wildcard file is an error', async () => {
    await files({ 'wildcards/e.txt': '# nothing yet\n\n' });
    expect((await load('__e__\n')).messages[0]).toMatch(/wildcard __e__ has no lines/);
  });

  it('a name cannot leave the wildcards folder', async () => {
    await files({ 'wildcards/ok.txt': 'x\n', 'secret.txt': 'password\n' });
    for (const bad of ['__../secret__', '__a/../../secret__', '__/etc/passwd__']) {
      const r = await load(`${bad}\n`);
      expect(r.prompts).toEqual([]);
      expect(r.messages[0]).toMatch(/is not a valid name/);
    }
  });

  it('refuses a FIFO (or a link to one) instead of hanging on it', async () => {
    await mkdir(join(dir, 'wildcards'));
    execFileSync('mkfifo', [join(dir, 'wildcards', 'pipe.txt')]);
    await symlink(join(dir, 'wildcards', 'pipe.txt'), join(dir, 'wildcards', 'link.txt'));
    expect((await load('__pipe__\n')).messages[0]).toMatch(/pipe\.txt is not a regular file/);
    expect((await load('__link__\n')).messages[0]).toMatch(/link\.txt is not a regular file/);
  });

  it('refuses a wildcard file over the size limit', async () => {
    await files({ 'wildcards/big.txt': 'word\n'.repeat(100) });
    const r = await load('__big__\n', { maxFileBytes: 400 });
    expect(r.messages[0]).toMatch(/big\.txt is larger than 400 bytes/);
  });

  it('counts a wildcard product against the limit before making it', async () => {
    await files({ 'wildcards/d.txt': '0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n' });
    const r = await load('__d__'.repeat(400) + '\n', { maxPrompts: 10_000 });
    expect(r.messages).toEqual([
      `${r.file}:0: prompts: would make more than 10^300 prompts after expanding variants, more than the limit of 10000`,
    ]);
  });
});

describe('the example in prompts/', () => {
  it('prompts/overnight.txt expands with prompts/wildcards/', async () => {
    const r = await loadPromptFiles([join(ROOT, 'prompts/overnight.txt')], {});
    expect(r.problems.map(formatProblem)).toEqual([]);
    const prompts = r.specs.map((s) => s.prompt);
    // Line 2: 4 colours × 4 animals (the owl is old or young) × 3 lights.
    expect(r.specs.filter((s) => s.line === 2)).toHaveLength(48);
    expect(prompts[0]).toBe('a teal paper lantern held by a fox, soft amber light');
    expect(prompts).toContain('a crimson paper lantern held by an old owl, moonlight');
    // Line 3: two distinct animals (5 pairs) × 2 styles.
    expect(prompts.filter((p) => p.includes('reading a map'))).toHaveLength(10);
    expect(prompts).toContain('a heron and an arctic owl reading a map, ink wash');
  });
});
