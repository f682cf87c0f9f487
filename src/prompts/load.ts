import { extname } from 'node:path';
import { PromptFileError, type PromptProblem } from '../errors.js';
import { parseCsv } from './parse-csv.js';
import { parseJsonl } from './parse-jsonl.js';
import { parseTxt } from './parse-txt.js';
import { readPromptFile } from './read-file.js';
import { checkRow, defaultsSchema, issuesToProblems, type ParseResult, type Row } from './row-schema.js';
import type { GenerationDefaults, PromptSpec } from './types.js';
import { DEFAULT_FLAGS, promptLengthProblem, resolveRow, type ResolvedRow } from './validate.js';
import { createExpander, type Expand, type Expansion, type ExpansionOptions } from './dynamic/expand.js';
import { formatCount } from './dynamic/count.js';
import { exactKindOf, readExactRows } from './from-image.js';

export interface LoadOptions {
  /** Largest file accepted, in bytes. Default 50 MiB. */
  maxFileBytes?: number;
  /** Most prompts (after variant expansion, before samples) all files together may make. Default: no limit. */
  maxPrompts?: number;
  /** Wildcards folder, combinatorial or random variants (see ExpansionOptions for the defaults). */
  expansion?: ExpansionOptions;
}

export interface LoadResult {
  /** Validated prompts in file, line and variant order; empty when there are problems. */
  specs: PromptSpec[];
  /** Every problem found (capped at MAX_PROBLEMS, the last one then says so). */
  problems: PromptProblem[];
  /** Prompt lines read (CSV: records), before variant expansion. */
  lines: number;
}

/** Beyond this many, more problems only bury the first ones. */
export const MAX_PROBLEMS = 1000;
export const COMMAND_LINE = '<command line>';

const PARSERS: Record<string, (file: string, text: string) => ParseResult> = {
  '.txt': parseTxt,
  '.jsonl': parseJsonl,
  '.csv': parseCsv,
};

interface GoodRow {
  file: string;
  line: number;
  row: Row;
  resolved: ResolvedRow;
  /** From a PNG or a manifest: taken literally (no variants, no command-line defaults). */
  exact?: boolean;
}

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

/**
 * Reads, parses and validates prompt files, then expands variants. Validation is whole-file:
 * every problem in every file is collected (up to MAX_PROBLEMS), and no specs are returned
 * unless there are none.
 */
export async function loadPromptFiles(
  files: string[],
  defaults: GenerationDefaults,
  opts: LoadOptions = {},
): Promise<LoadResult> {
  const problems: PromptProblem[] = [];
  const full = (): boolean => problems.length >= MAX_PROBLEMS;
  const add = (ps: PromptProblem[]): void => {
    for (const p of ps) if (!full()) problems.push(p);
  };
  const checked = checkDefaults(defaults);
  add(checked.problems);

  // Rows are expanded into specs as they pass, so no file's rows outlive it; once the prompt limit
  // is passed, variants are only counted (a runaway `{a|b}` product must not fill memory).
  const specs: PromptSpec[] = [];
  const ids = new Map<string, string>();
  let total = 0n;
  const limit = opts.maxPrompts === undefined ? null : BigInt(opts.maxPrompts);
  const expander = createExpander({
    ...(opts.maxFileBytes !== undefined ? { maxFileBytes: opts.maxFileBytes } : {}),
    ...opts.expansion,
  });
  let lines = 0;
  for (const file of files) {
    if (full()) break;
    const exact = exactKindOf(file);
    const parser = PARSERS[extname(file).toLowerCase()];
    let parsed: ParseResult;
    if (exact !== null) {
      parsed = await readExactRows(file, exact, opts.maxFileBytes);
    } else {
      if (!parser) {
        add([{ file, line: 0, field: 'file', message: 'unsupported extension; use .txt, .jsonl or .csv' }]);
        continue;
      }
      const read = await readPromptFile(file, opts.maxFileBytes);
      if (!read.ok) {
        add([read.problem]);
        continue;
      }
      parsed = parser(file, read.text);
    }
    lines += parsed.rows.length;
    const expand = expander.forFile(file);
    // Gathered per file and sorted, so problems read top to bottom like the file.
    const found: PromptProblem[] = [...parsed.problems];
    const badLines = new Set(parsed.problems.map((p) => p.line));
    for (const raw of parsed.rows) {
      if (problems.length + found.length >= MAX_PROBLEMS) break;
      const checkedRow = checkRow(file, raw);
      if (!checkedRow.ok) {
        found.push(...checkedRow.problems);
        continue;
      }
      const res = resolveRow(file, raw.line, checkedRow.row, exact !== null ? {} : checked.defaults);
      if (!res.ok) {
        found.push(...res.problems);
        continue;
      }
      if (badLines.has(raw.line)) continue;
      const g: GoodRow = {
        file,
        line: raw.line,
        row: checkedRow.row,
        resolved: res.resolved,
        ...(exact !== null ? { exact: true } : {}),
      };
      const planned = planRow(g, expand);
      if (!planned.ok) {
        found.push({ file, line: raw.line, field: 'prompt', message: planned.message });
        continue;
      }
      total += planned.count;
      if (limit === null || total <= limit) found.push(...expandRow(g, planned, specs, ids));
    }
    add(found.sort((a, b) => a.line - b.line));
  }

  if (limit !== null && total > limit && !full()) {
    const file = files.length === 1 ? files[0]! : files.join(', ');
    add([
      {
        file,
        line: 0,
        field: 'prompts',
        message: `would make ${formatCount(total)} prompts after expanding variants, more than the limit of ${opts.maxPrompts}`,
      },
    ]);
    return finish([], problems, lines);
  }
  return finish(problems.length > 0 ? [] : specs, problems, lines);
}

function finish(specs: PromptSpec[], problems: PromptProblem[], lines: number): LoadResult {
  const last = problems[MAX_PROBLEMS - 1];
  if (last !== undefined) {
    problems.push({
      file: last.file,
      line: 0,
      field: 'problems',
      message: `stopped looking after ${MAX_PROBLEMS} problems; fix these first`,
    });
  }
  return { specs, problems, lines };
}

/** A row from a PNG or manifest is taken literally; any other is a template. */
function planRow(g: GoodRow, expand: Expand): ReturnType<Expand> {
  return g.exact ? { ok: true, count: 1n, prompts: () => [g.row.prompt] } : expand(g.row.prompt);
}

/** Expands one row's variants into specs; reports empty or too-long variants and duplicate ids. */
function expandRow(g: GoodRow, planned: Expansion, specs: PromptSpec[], ids: Map<string, string>): PromptProblem[] {
  const { file, line, row, resolved } = g;
  const problems: PromptProblem[] = [];
  const many = planned.count > 1n;
  const count = formatCount(planned.count);
  let n = 0;
  for (const prompt of planned.prompts()) {
    n++;
    const which = many ? `variant ${n} of ${count}` : 'prompt';
    if (prompt === '') {
      problems.push({ file, line, field: 'prompt', message: `${which} is empty` });
      continue;
    }
    const tooLong = promptLengthProblem(prompt, resolved.model);
    if (tooLong) {
      problems.push({ file, line, field: 'prompt', message: many ? `${which}: ${tooLong}` : tooLong });
      continue;
    }
    // Job ids are built from the line's id, so each variant needs its own.
    const id = row.id === undefined ? undefined : many ? `${row.id}.${n}` : row.id;
    if (id !== undefined) {
      const first = ids.get(id);
      if (first !== undefined) {
        problems.push({
          file,
          line,
          field: 'id',
          message: `duplicate id ${JSON.stringify(id)} (first used at ${first})`,
        });
        continue;
      }
      ids.set(id, `${file}:${line}`);
    }
    specs.push({
      source: file,
      line,
      ...(id !== undefined ? { id } : {}),
      prompt,
      ...resolved,
      params: { ...resolved.params },
    });
  }
  // One line of a thousand variants should not print a thousand near-identical problems.
  return problems.slice(0, 3);
}

/** As loadPromptFiles, but throws PromptFileError (exit 2) when any problem was found. */
export async function loadPromptFilesOrThrow(
  files: string[],
  defaults: GenerationDefaults,
  opts: LoadOptions = {},
): Promise<{ specs: PromptSpec[]; lines: number }> {
  const { specs, problems, lines } = await loadPromptFiles(files, defaults, opts);
  if (problems.length > 0) throw new PromptFileError(problems);
  return { specs, lines };
}
