import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatProblem } from '../src/errors.js';
import { loadPromptFiles, type LoadOptions, type LoadResult } from '../src/prompts/load.js';
import type { GenerationDefaults } from '../src/prompts/types.js';
import { useTempDir } from './helpers/temp-hooks.js';

export interface Fixtures {
  /** Writes a fixture file into this test's temp dir and returns its path. */
  write(name: string, content: string | Uint8Array): Promise<string>;
  /** Writes one file and loads it; `messages` are the formatted problems. */
  load(
    name: string,
    content: string | Uint8Array,
    defaults?: GenerationDefaults,
    opts?: LoadOptions,
  ): Promise<LoadResult & { file: string; messages: string[] }>;
}

/** A fresh temp dir per test, removed afterwards. */
export function useFixtures(): Fixtures {
  const dir = useTempDir('nightshift-prompts-');
  const write = async (name: string, content: string | Uint8Array): Promise<string> => {
    const file = join(dir(), name);
    await writeFile(file, content);
    return file;
  };
  return {
    write,
    async load(name, content, defaults = {}, opts = {}) {
      const file = await write(name, content);
      const res = await loadPromptFiles([file], defaults, opts);
      return { ...res, file, messages: res.problems.map(formatProblem) };
    },
  };
}

/** One JSONL line from an object. */
export function jsonl(...rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}
