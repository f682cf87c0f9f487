import { extname } from 'node:path';
import type { PromptProblem } from '../errors.js';
import { openRegularFile } from '../regular-file.js';
import { exactKindOf, manifestRows, readPngRow } from './from-image.js';
import { readLines, type LineEvent } from './lines.js';
import { csvRows } from './parse-csv.js';
import { jsonlRows } from './parse-jsonl.js';
import { txtRows } from './parse-txt.js';
import { checkRow, type ParseResult } from './row-schema.js';
import type { GenerationDefaults, PromptSpec } from './types.js';
import { resolveRow } from './validate.js';
import { createExpander, type Expand, type ExpansionOptions } from './dynamic/expand.js';
import { expandRow, planRow, type GoodRow } from './expand.js';

/**
 * One pass over prompt files: each file is read a chunk at a time, its rows checked and expanded
 * into specs as they pass, and the specs handed out a chunk at a time, so neither a file nor its
 * specs need to be in memory whole. Once the prompt limit is passed, reading stops: the batch is
 * refused whatever the rest holds. The same pass serves a validation that keeps only counts and
 * problems and a second pass that consumes the specs.
 */

/** Largest prompt file accepted, in bytes (50 MiB): far beyond any real prompt list. */
export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
/** Beyond this many, more problems only bury the first ones. */
export const MAX_PROBLEMS = 1000;
/** Specs handed out per chunk. */
const SPECS_PER_CHUNK = 1000;

export interface ScanOptions {
  /** Largest file accepted, in bytes. Default 50 MiB. */
  maxFileBytes?: number;
  /** Most prompts (after variant expansion, before samples) all files together may make. Default: no limit. */
  maxPrompts?: number;
  /** Wildcards folder, combinatorial or random variants (see ExpansionOptions for the defaults). */
  expansion?: ExpansionOptions;
}

/** What a pass found besides the specs: filled in as it goes, complete once the pass ends. */
export interface ScanTally {
  /** Every problem found, capped at MAX_PROBLEMS, each file's in line order. */
  problems: PromptProblem[];
  /** Prompt lines read (CSV: records), before variant expansion. */
  lines: number;
  /** Prompts made so far (after variant expansion), counting stopped once past the limit. */
  prompts: bigint;
  /**
   * Where counting stopped because the limit was passed (null when it was not); `early` when rows
   * were left unread, so `prompts` is only a lower bound.
   */
  overLimitAt: { file: string; line: number; early: boolean } | null;
}

export function newTally(): ScanTally {
  return { problems: [], lines: 0, prompts: 0n, overLimitAt: null };
}

type Parser = (file: string, events: AsyncIterable<LineEvent>, maxRows: number) => AsyncGenerator<ParseResult>;

const PARSERS: Record<string, Parser> = {
  '.txt': txtRows,
  '.jsonl': jsonlRows,
  '.csv': csvRows,
};

function fileProblem(file: string, message: string): ParseResult {
  return { rows: [], problems: [{ file, line: 0, field: 'file', message }] };
}

/** The raw rows of one file, a batch at a time; the file is open only while they are read. */
async function* fileRows(file: string, maxBytes: number, maxRows: number): AsyncGenerator<ParseResult> {
  const exact = exactKindOf(file);
  if (exact === 'png') {
    yield await readPngRow(file, maxBytes);
    return;
  }
  const parser = exact === 'manifest' ? manifestRows : PARSERS[extname(file).toLowerCase()];
  if (!parser) {
    yield fileProblem(file, 'unsupported extension; use .txt, .jsonl or .csv');
    return;
  }
  const opened = await openRegularFile(file, { maxBytes });
  if (!opened.ok) {
    yield fileProblem(file, opened.message);
    return;
  }
  try {
    yield* parser(file, readLines(file, opened.fh, maxBytes), maxRows);
  } finally {
    await opened.fh.close().catch(() => {});
  }
}

interface FileScan {
  file: string;
  exact: boolean;
  expand: Expand;
  defaults: GenerationDefaults;
  limit: bigint | null;
  ids: Map<string, string>;
  tally: ScanTally;
}

/** Checks one batch of rows; returns the specs that passed and adds the problems to `found`. */
function checkBatch(s: FileScan, batch: ParseResult, found: PromptProblem[]): PromptSpec[] {
  const specs: PromptSpec[] = [];
  const badLines = new Set(batch.problems.map((p) => p.line));
  found.push(...batch.problems);
  s.tally.lines += batch.rows.length;
  for (const raw of batch.rows) {
    if (s.tally.problems.length + found.length >= MAX_PROBLEMS) break;
    const checked = checkRow(s.file, raw);
    if (!checked.ok) {
      found.push(...checked.problems);
      continue;
    }
    const res = resolveRow(s.file, raw.line, checked.row, s.exact ? {} : s.defaults);
    if (!res.ok) {
      found.push(...res.problems);
      continue;
    }
    if (badLines.has(raw.line)) continue;
    const g: GoodRow = { file: s.file, line: raw.line, row: checked.row, resolved: res.resolved, exact: s.exact };
    const planned = planRow(g, s.expand);
    if (!planned.ok) {
      found.push({ file: s.file, line: raw.line, field: 'prompt', message: planned.message });
      continue;
    }
    s.tally.prompts += planned.count;
    if (s.limit !== null && s.tally.prompts > s.limit) {
      s.tally.overLimitAt = { file: s.file, line: raw.line, early: raw !== batch.rows.at(-1) };
      break;
    }
    found.push(...expandRow(g, planned, specs, s.ids));
  }
  return specs;
}

/**
 * Yields validated specs, at most SPECS_PER_CHUNK at a time, in file, line and variant order; every
 * problem goes to `tally`. Specs stop coming once a problem is found (the pass goes on to collect
 * the others), so a consumer never gets a spec from files that will be refused.
 */
export async function* scanPromptFiles(
  files: readonly string[],
  defaults: GenerationDefaults,
  opts: ScanOptions,
  tally: ScanTally,
): AsyncGenerator<PromptSpec[]> {
  const ids = new Map<string, string>();
  const limit = opts.maxPrompts === undefined ? null : BigInt(opts.maxPrompts);
  const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const expander = createExpander({ maxFileBytes: maxBytes, ...opts.expansion });
  const maxRows = opts.maxPrompts ?? Number.POSITIVE_INFINITY;
  let pending: PromptSpec[] = [];
  for (const [i, file] of files.entries()) {
    if (tally.problems.length >= MAX_PROBLEMS || tally.overLimitAt !== null) break;
    const exact = exactKindOf(file) !== null;
    const s: FileScan = { file, exact, expand: expander.forFile(file), defaults, limit, ids, tally };
    // Gathered per file and sorted, so problems read top to bottom like the file.
    const found: PromptProblem[] = [];
    const rows = fileRows(file, maxBytes, maxRows);
    try {
      for (let next = await rows.next(); !next.done; next = await rows.next()) {
        const specs = checkBatch(s, next.value, found);
        if (tally.problems.length === 0 && found.length === 0) {
          pending.push(...specs);
          while (pending.length >= SPECS_PER_CHUNK) yield pending.splice(0, SPECS_PER_CHUNK);
        } else pending = [];
        // checkBatch may have set it (the narrowing above does not know).
        const over = tally.overLimitAt as ScanTally['overLimitAt'];
        if (over !== null) {
          if (!over.early) over.early = i < files.length - 1 || (await moreRows(rows));
          break;
        }
        if (tally.problems.length + found.length >= MAX_PROBLEMS) break;
      }
    } finally {
      await rows.return(undefined);
    }
    for (const p of found.sort((a, b) => a.line - b.line))
      if (tally.problems.length < MAX_PROBLEMS) tally.problems.push(p);
  }
  if (pending.length > 0 && tally.problems.length === 0 && tally.overLimitAt === null) yield pending;
}

/** Whether the file holds another row: a refused batch's count is then only a lower bound. */
async function moreRows(rows: AsyncGenerator<ParseResult>): Promise<boolean> {
  for (let next = await rows.next(); !next.done; next = await rows.next()) {
    if (next.value.rows.length > 0 || next.value.problems.length > 0) return true;
  }
  return false;
}
