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
