import { describe, expect, it } from 'vitest';
import { defaultBatchName } from '../src/queue/enqueue.js';
import { NAME, checkName, nameFrom } from '../src/names.js';
import { UsageError } from '../src/errors.js';

describe('one rule for names', () => {
  it('a batch named after its file is always a valid name', () => {
    for (const file of ['prompts/anime sunset.txt', '../--night (v2).csv', '.hidden.jsonl', `${'x'.repeat(80)}.txt`]) {
      expect(defaultBatchName(file)).toMatch(NAME);
    }
    expect(defaultBatchName('prompts/anime sunset.txt')).toBe('anime-sunset');
    expect(defaultBatchName('../--night (v2).csv')).toBe('night-v2-');
    expect(defaultBatchName('prompts/---.txt')).toBe('batch');
    // Letters a name cannot hold leave a hash behind, so two such files are two batches.
    const [a, b] = [defaultBatchName('日本.txt'), defaultBatchName('中国.txt')];
    expect(a).toMatch(/^batch-[0-9a-f]{8}$/);
    expect(b).toMatch(/^batch-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    // A name that keeps some of its letters stays what it always was: a rerun finds its batch.
    expect(defaultBatchName('café.txt')).toBe('caf-');
  });

  it('nameFrom gives null when nothing of the text can be a name', () => {
    expect(nameFrom('日本')).toBeNull();
    expect(nameFrom('a/b')).toBe('a-b');
  });

  it('checkName names the flag and the rule', () => {
    expect(() => checkName('../x', '--batch', 'batch')).toThrow(UsageError);
    expect(() => checkName('../x', '--batch', 'batch')).toThrow(/--batch: "\.\.\/x" is not a valid batch name/);
  });
});
