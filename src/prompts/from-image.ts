import { basename, extname } from 'node:path';
import type { PromptProblem } from '../errors.js';
import { readPngText } from '../metadata/png-text.js';
import { parseParameters } from '../metadata/parameters.js';
import { readRegularFile } from '../regular-file.js';
import { tooDeepJson, tooDeepMessage } from './json-depth.js';
import type { LineEvent } from './lines.js';
import type { ParseResult, RawRow } from './row-schema.js';

/**
 * Re-running what nightshift made: a PNG it wrote (its `nightshift` JSON text chunk, else the
 * A1111 `parameters` chunk) or a manifest (`manifest.jsonl`, `*.manifest.jsonl`) becomes
 * prompt rows with the exact model, prompt, negative prompt, params and seed. These rows
 * are taken literally: no variant expansion and no command-line defaults (scan.ts).
 */

export type ExactKind = 'png' | 'manifest';

export function exactKindOf(file: string): ExactKind | null {
  const name = basename(file).toLowerCase();
  if (extname(name) === '.png') return 'png';
  if (name === 'manifest.jsonl' || name.endsWith('.manifest.jsonl')) return 'manifest';
  return null;
}

function problem(file: string, line: number, field: string, message: string): PromptProblem {
  return { file, line, field, message };
}

function only(p: PromptProblem): ParseResult {
  return { rows: [], problems: [p] };
}

/** The row fields of one generated image; params are spread so the row schema checks each. */
function rowFields(v: Record<string, unknown>): Record<string, unknown> {
  const params = v.params !== null && typeof v.params === 'object' ? (v.params as Record<string, unknown>) : {};
  const fields: Record<string, unknown> = { ...params, prompt: v.prompt, model: v.model, seed: v.seed };
  if (typeof v.negative_prompt === 'string' && v.negative_prompt !== '') fields.negative_prompt = v.negative_prompt;
  return fields;
}

/** Which required values a decoded record lacks. */
function missing(v: Record<string, unknown>): string[] {
  return ['prompt', 'model', 'seed', 'params'].filter((k) => v[k] === undefined || v[k] === null);
}

/** A JSON object from a text chunk or a manifest line, depth-checked before it is parsed. */
function parseRecord(text: string): { ok: true; value: Record<string, unknown> } | { ok: false; field: string | null } {
  const deep = tooDeepJson(text);
  if (deep !== null) return { ok: false, field: deep.key };
  try {
    const v = JSON.parse(text) as unknown;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      return { ok: true, value: v as Record<string, unknown> };
  } catch {
    // Reported by the caller in its own words.
  }
  return { ok: false, field: 'json' };
}

const PNG_KEYS: ReadonlySet<string> = new Set(['nightshift', 'parameters']);

export async function readPngRow(file: string, maxBytes: number): Promise<ParseResult> {
  const read = await readRegularFile(file, { maxBytes });
  if (!read.ok) return only(problem(file, 0, 'file', read.message));
  let png: ReturnType<typeof readPngText>;
  try {
    png = readPngText(read.bytes, { keys: PNG_KEYS });
  } catch (err) {
    return only(problem(file, 0, 'file', (err as Error).message));
  }
  const { text } = png;
  if (text.nightshift !== undefined) {
    const rec = parseRecord(text.nightshift);
    if (!rec.ok) {
      return only(
        rec.field === 'json'
          ? problem(file, 0, 'nightshift', 'the nightshift text chunk is not a JSON object')
          : problem(file, 0, rec.field ?? 'nightshift', `the nightshift text chunk ${tooDeepMessage()}`),
      );
    }
    const lacks = missing(rec.value);
    if (lacks.length > 0) return only(problem(file, 0, lacks[0]!, 'missing from the nightshift text chunk'));
    return { rows: [{ line: 1, fields: rowFields(rec.value) }], problems: [] };
  }
  if (text.parameters !== undefined) {
    // Another tool's image (or one whose JSON chunk was stripped): what A1111's format carries.
    const p = parseParameters(text.parameters);
    if (p.seed === undefined) return only(problem(file, 0, 'seed', 'the parameters text chunk has no Seed'));
    const fields = rowFields({ prompt: p.prompt, negative_prompt: p.negative_prompt, seed: p.seed, params: p.params });
    if (p.model !== undefined) fields.model = p.model;
    else delete fields.model;
    return { rows: [{ line: 1, fields }], problems: [] };
  }
  const big = png.oversized[0];
  if (big !== undefined) {
    return only(problem(file, 0, big, `the ${big} text chunk is larger than nightshift reads (1 MiB); not read`));
  }
  return only(problem(file, 0, 'file', 'has no nightshift or parameters text chunk to re-run'));
}

/**
 * One row per job of a manifest, read as its lines arrive (the last line per id wins, as for every
 * manifest reader, so rows are handed over at the end). Stops once it holds more than `maxRows`
 * jobs: the batch is refused for its size anyway.
 */
export async function* manifestRows(
  file: string,
  events: AsyncIterable<LineEvent>,
  maxRows: number,
): AsyncGenerator<ParseResult> {
  const rows: RawRow[] = [];
  const problems: PromptProblem[] = [];
  const byId = new Map<string, number>();
  for await (const ev of events) {
    if ('problem' in ev) {
      yield only(ev.problem);
      return;
    }
    for (const { n: line, text } of ev.lines) {
      if (text.trim() === '') continue;
      const rec = parseRecord(text);
      if (!rec.ok) {
        problems.push(
          rec.field === 'json'
            ? problem(file, line, 'line', 'not a JSON object (a manifest line is one JSON record)')
            : problem(file, line, rec.field ?? 'line', tooDeepMessage()),
        );
        continue;
      }
      const v = rec.value;
      const lacks = missing(v);
      if (lacks.length > 0) {
        problems.push(problem(file, line, lacks[0]!, 'is required in a manifest record'));
        continue;
      }
      const row = { line, fields: rowFields(v) };
      const at = typeof v.id === 'string' ? byId.get(v.id) : undefined;
      if (at !== undefined) rows[at] = row;
      else {
        if (typeof v.id === 'string') byId.set(v.id, rows.length);
        rows.push(row);
      }
    }
    if (rows.length > maxRows) break;
  }
  yield { rows, problems };
}
