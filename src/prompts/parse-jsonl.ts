import type { PromptProblem } from '../errors.js';
import { duplicateTopLevelKey, tooDeepJson, tooDeepMessage } from './json-depth.js';
import type { LineEvent } from './lines.js';
import { isRowKey, unknownKeyProblem, type ParseResult, type RawRow } from './row-schema.js';

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** One line parsed as a JSON object, or the problem with it (field `json`, or the key a too-deep value is under). */
export function parseJsonObjectLine(
  file: string,
  line: number,
  raw: string,
): { ok: true; value: Record<string, unknown> } | { ok: false; problem: PromptProblem } {
  const deep = tooDeepJson(raw);
  if (deep !== null)
    return { ok: false, problem: { file, line, field: deep.key ?? 'json', message: tooDeepMessage() } };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    const message = `invalid JSON: ${err instanceof Error ? err.message : String(err)}`;
    return { ok: false, problem: { file, line, field: 'json', message } };
  }
  const twice = typeof value === 'object' && value !== null && !Array.isArray(value) ? duplicateTopLevelKey(raw) : null;
  if (twice !== null) {
    return { ok: false, problem: { file, line, field: twice, message: 'is given twice on this line; keep one' } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      problem: { file, line, field: 'json', message: `each line must be a JSON object, got ${kindOf(value)}` },
    };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * `.jsonl`: one JSON object per line; blank lines are skipped. Unknown keys are reported
 * (field = the key) and the rest of the line is still checked, so one run shows every problem.
 * A `null` value means unset, as an empty CSV field does.
 */
export async function* jsonlRows(file: string, events: AsyncIterable<LineEvent>): AsyncGenerator<ParseResult> {
  for await (const ev of events) {
    if ('problem' in ev) {
      yield { rows: [], problems: [ev.problem] };
      return;
    }
    const rows: RawRow[] = [];
    const problems: PromptProblem[] = [];
    for (const { n: line, text } of ev.lines) {
      if (text.trim() === '') continue;
      const parsed = parseJsonObjectLine(file, line, text);
      if (!parsed.ok) {
        problems.push(parsed.problem);
        continue;
      }
      const fields: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(parsed.value)) {
        if (!isRowKey(key)) problems.push(unknownKeyProblem(file, line, key, 'key'));
        else if (v !== null) fields[key] = v;
      }
      rows.push({ line, fields });
    }
    yield { rows, problems };
  }
}
