import { PromptFileError, type PromptProblem } from '../errors.js';
import { defaultsSchema, issuesToProblems } from './row-schema.js';
import { MAX_PROBLEMS, newTally, scanPromptFiles, type ScanOptions, type ScanTally } from './scan.js';
import type { GenerationDefaults, PromptSpec } from './types.js';
import { formatCount } from './dynamic/count.js';
import { DEFAULT_FLAGS } from './validate.js';

export type LoadOptions = ScanOptions;

export interface LoadResult {
  /** Validated prompts in file, line and variant order; empty when there are problems. */
  specs: PromptSpec[];
  /** Every problem found (capped at MAX_PROBLEMS, the last one then says so). */
  problems: PromptProblem[];
  /** Prompt lines read (CSV: records), before variant expansion. */
  lines: number;
}

/** What a validating pass keeps: counts and problems, no specs. */
export interface Validation {
  problems: PromptProblem[];
  lines: number;
  /** Prompts the files make after variant expansion (before samples). */
  prompts: bigint;
}

export const COMMAND_LINE = '<command line>';

/** Checks the CLI defaults; a bad one is reported against its flag and left out. */
function checkDefaults(defaults: GenerationDefaults): { defaults: GenerationDefaults; problems: PromptProblem[] } {
  // Only set flags count: a caller may pass `{ width: undefined }` or extra keys.
  const given = Object.fromEntries(Object.entries(defaults).filter(([k, v]) => v !== undefined && k in DEFAULT_FLAGS));
  const res = defaultsSchema.safeParse(given);
  if (res.success) return { defaults: res.data, problems: [] };
  const flag = (k: string): string => DEFAULT_FLAGS[k as keyof GenerationDefaults] ?? k;
  const problems = issuesToProblems(COMMAND_LINE, 0, res.error.issues, flag);
  const bad = new Set(res.error.issues.map((i) => String(i.path[0])));
  const kept = Object.fromEntries(Object.entries(given).filter(([k]) => !bad.has(k)));
  return { defaults: kept as GenerationDefaults, problems };
}

/** Adds the problems that are only known at the end: the prompt limit, and the cap on problems. */
function finish(files: readonly string[], opts: ScanOptions, tally: ScanTally): void {
  const { problems, overLimitAt: at } = tally;
  if (at !== null && problems.length < MAX_PROBLEMS) {
    // Counting stops at the limit: unless nothing was left unread, the count is a lower bound.
    const count = formatCount(tally.prompts);
    const where = files.length === 1 ? `line ${at.line}` : `${at.file}:${at.line}`;
    const made = !at.early ? count : count.startsWith('more than') ? count : `at least ${count}`;
    problems.push({
      file: files.length === 1 ? files[0]! : files.join(', '),
      line: 0,
      field: 'prompts',
      message:
        `would make ${made} prompts after expanding variants, more than the limit of ${opts.maxPrompts}` +
        (at.early ? ` (counting stopped at ${where})` : ''),
    });
  }
  const last = problems[MAX_PROBLEMS - 1];
  if (last !== undefined) {
    problems.push({
      file: last.file,
      line: 0,
      field: 'problems',
      message: `stopped looking after ${MAX_PROBLEMS} problems; fix these first`,
    });
  }
}

/**
 * The validating pass: reads, parses and validates every file, expanding variants only to check
 * them, and keeps nothing but counts and problems, so a batch of any size is judged in bounded
 * memory. Pair it with promptSpecChunks to consume the specs in a second pass. `look`, when given,
 * sees each chunk of specs as it passes (and must not keep it): specs stop coming at the first
 * problem, so what it saw counts only when the result has no problems.
 */
export async function validatePromptFiles(
  files: readonly string[],
  defaults: GenerationDefaults,
  opts: LoadOptions = {},
  look?: (chunk: PromptSpec[]) => void,
): Promise<Validation> {
  const tally = newTally();
  const checked = checkDefaults(defaults);
  tally.problems.push(...checked.problems);
  for await (const chunk of scanPromptFiles(files, checked.defaults, opts, tally)) {
    // Each chunk is dropped as soon as it is looked at.
    if (tally.problems.length === 0) look?.(chunk);
  }
  finish(files, opts, tally);
  return { problems: tally.problems, lines: tally.lines, prompts: tally.prompts };
}

/**
 * The consuming pass: the same reading, yielding specs a chunk at a time. Throws PromptFileError
 * (exit 2) on the first problem, which after a clean validation means a file changed in between.
 */
export async function* promptSpecChunks(
  files: readonly string[],
  defaults: GenerationDefaults,
  opts: LoadOptions = {},
): AsyncGenerator<PromptSpec[]> {
  const tally = newTally();
  const checked = checkDefaults(defaults);
  if (checked.problems.length > 0) throw new PromptFileError(checked.problems);
  for await (const chunk of scanPromptFiles(files, checked.defaults, opts, tally)) {
    if (tally.problems.length > 0) break;
    yield chunk;
  }
  finish(files, opts, tally);
  if (tally.problems.length > 0) throw new PromptFileError(tally.problems);
}

/**
 * Reads, parses and validates prompt files, then expands variants: the validating pass, then (when
 * it found nothing) the consuming pass collected. Validation is whole-file: every problem in every
 * file is collected (up to MAX_PROBLEMS), and no specs are returned unless there are none.
 */
export async function loadPromptFiles(
  files: string[],
  defaults: GenerationDefaults,
  opts: LoadOptions = {},
): Promise<LoadResult> {
  const checked = await validatePromptFiles(files, defaults, opts);
  if (checked.problems.length > 0) return { specs: [], problems: checked.problems, lines: checked.lines };
  const specs: PromptSpec[] = [];
  try {
    for await (const chunk of promptSpecChunks(files, defaults, opts)) for (const s of chunk) specs.push(s);
  } catch (err) {
    // A file changed between the passes: its problems now.
    if (err instanceof PromptFileError) return { specs: [], problems: err.problems, lines: checked.lines };
    throw err;
  }
  return { specs, problems: [], lines: checked.lines };
}

/**
 * As loadPromptFiles, but throws PromptFileError (exit 2) when any problem was found. For callers
 * that want every spec at hand (enqueue streams them instead).
 * @public
 */
export async function loadPromptFilesOrThrow(
  files: string[],
  defaults: GenerationDefaults,
  opts: LoadOptions = {},
): Promise<{ specs: PromptSpec[]; lines: number }> {
  const { specs, problems, lines } = await loadPromptFiles(files, defaults, opts);
  if (problems.length > 0) throw new PromptFileError(problems);
  return { specs, lines };
}
