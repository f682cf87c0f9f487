/**
 * Once per `npm run test:hosts`: decides whether this machine can run the suite (and says why not,
 * once), and prints every file's figures together at the end.
 */
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { tempDir } from '../helpers/temp.js';
import { readFigures, formatFigures } from './figures.js';
import { whyUnsupported } from './netns.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where the test files append their figures. */
    hostsFigures: string;
    /** Why the suite cannot run here; null when it can. */
    hostsUnsupported: string | null;
  }
}

export default async function setup(project: TestProject) {
  const unsupported = await whyUnsupported();
  if (unsupported) console.warn(`\n[hosts] SKIPPED: ${unsupported}\n`);
  const { dir, cleanup } = await tempDir('nightshift-hosts-figures-');
  const file = join(dir, 'figures.jsonl');
  project.provide('hostsFigures', file);
  project.provide('hostsUnsupported', unsupported);
  return async () => {
    if (!unsupported) console.log(`\n${formatFigures(await readFigures(file))}\n`);
    await cleanup();
  };
}
