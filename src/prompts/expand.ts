import type { PromptProblem } from '../errors.js';
import { formatCount } from './dynamic/count.js';
import type { Expand, ExpandResult, Expansion } from './dynamic/expand.js';
import type { Row } from './row-schema.js';
import type { PromptSpec } from './types.js';
import { controlCharProblem, promptLengthProblem, type ResolvedRow } from './validate.js';

/** A row that passed its checks, ready to be expanded into specs. */
export interface GoodRow {
  file: string;
  line: number;
  row: Row;
  resolved: ResolvedRow;
  /** From a PNG or a manifest: taken literally (no variants, no command-line defaults). */
  exact: boolean;
}

/** A row from a PNG or manifest is taken literally; any other is a template. */
export function planRow(g: GoodRow, expand: Expand): ExpandResult {
  return g.exact ? { ok: true, count: 1n, prompts: () => [g.row.prompt] } : expand(g.row.prompt);
}

/** Expands one row's variants into `specs`; reports empty or too-long variants and duplicate ids. */
export function expandRow(
  g: GoodRow,
  planned: Expansion,
  specs: PromptSpec[],
  ids: Map<string, string>,
): PromptProblem[] {
  const { file, line, row, resolved } = g;
  const problems: PromptProblem[] = [];
  const many = planned.count > 1n;
  // A line's id names the line, whether it makes one prompt or many: two lines may not share one.
  if (many && row.id !== undefined) {
    const first = ids.get(row.id);
    if (first !== undefined) return [duplicateId(g, row.id, first)];
    ids.set(row.id, `${file}:${line}`);
  }
  const count = formatCount(planned.count);
  let n = 0;
  for (const prompt of planned.prompts()) {
    n++;
    const which = many ? `variant ${n} of ${count}` : 'prompt';
    if (prompt === '') {
      problems.push({ file, line, field: 'prompt', message: `${which} is empty` });
      continue;
    }
    const tooLong = promptLengthProblem(prompt, resolved.model) ?? controlCharProblem(prompt);
    if (tooLong) {
      problems.push({ file, line, field: 'prompt', message: many ? `${which}: ${tooLong}` : tooLong });
      continue;
    }
    // Job ids are built from the line's id, so each variant needs its own.
    const id = row.id === undefined ? undefined : many ? `${row.id}.${n}` : row.id;
    if (id !== undefined) {
      const first = ids.get(id);
      if (first !== undefined) {
        problems.push(duplicateId(g, id, first));
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

function duplicateId(g: GoodRow, id: string, first: string): PromptProblem {
  return {
    file: g.file,
    line: g.line,
    field: 'id',
    message: `duplicate id ${JSON.stringify(id)} (first used at ${first})`,
  };
}
