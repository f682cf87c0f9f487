import type { PromptProblem } from '../errors.js';
import { isRowKey, unknownKeyProblem, type ParseResult, type RawRow } from './row-schema.js';

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/**
 * `.jsonl`: one JSON object per line; blank lines are skipped. Unknown keys are reported
 * (field = the key) and the rest of the line is still checked, so one run shows every problem.
 * A `null` value means unset, as an empty CSV field does.
 */
export function parseJsonl(file: string, text: string): ParseResult {
  const rows: RawRow[] = [];
  const problems: PromptProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      problems.push({
        file,
        line,
        field: 'json',
        message: `invalid JSON: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push({ file, line, field: 'json', message: `each line must be a JSON object, got ${kindOf(value)}` });
      return;
    }
    const fields: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (!isRowKey(key)) problems.push(unknownKeyProblem(file, line, key, 'key'));
      else if (v !== null) fields[key] = v;
    }
    rows.push({ line, fields });
  });
  return { rows, problems };
}
