import { readFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { PromptProblem } from '../errors.js';
import { readPngTextChunks } from '../metadata/png-text.js';
import { parseParameters } from '../metadata/parameters.js';
import { decodePromptBytes, DEFAULT_MAX_FILE_BYTES } from './read-file.js';
import type { ParseResult, RawRow } from './row-schema.js';

/**
 * Re-running what nightshift made: a PNG it wrote (its `nightshift` JSON text chunk, else the
 * A1111 `parameters` chunk) or a manifest (`manifest.jsonl`, `*.manifest.jsonl`) becomes
 * prompt rows with the exact model, prompt, negative prompt, params and seed. These rows
 * are taken literally: no variant expansion and no command-line defaults (load.ts).
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

export async function readPngRow(file: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<ParseResult> {
  let bytes: Buffer;
  try {
    const st = await stat(file);
    if (!st.isFile()) return { rows: [], problems: [problem(file, 0, 'file', 'is not a file')] };
    if (st.size > maxBytes)
      return { rows: [], problems: [problem(file, 0, 'file', `file is too large (${st.size} bytes)`)] };
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      rows: [],
      problems: [
        problem(file, 0, 'file', code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? String(err)})`),
      ],
    };
  }
  let text: Record<string, string>;
  try {
    text = readPngTextChunks(bytes);
  } catch (err) {
    return { rows: [], problems: [problem(file, 0, 'file', (err as Error).message)] };
  }
  if (text.nightshift !== undefined) {
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(text.nightshift) as Record<string, unknown>;
    } catch {
      return { rows: [], problems: [problem(file, 0, 'nightshift', 'the nightshift text chunk is not JSON')] };
    }
    const lacks = missing(v);
    if (lacks.length > 0)
      return { rows: [], problems: [problem(file, 0, lacks[0]!, 'missing from the nightshift text chunk')] };
    return { rows: [{ line: 1, fields: rowFields(v) }], problems: [] };
  }
  if (text.parameters !== undefined) {
    // Another tool's image (or one whose JSON chunk was stripped): what A1111's format carries.
    const p = parseParameters(text.parameters);
    if (p.seed === undefined)
      return { rows: [], problems: [problem(file, 0, 'seed', 'the parameters text chunk has no Seed')] };
    const v: Record<string, unknown> = {
      prompt: p.prompt,
      negative_prompt: p.negative_prompt,
      seed: p.seed,
      params: p.params,
    };
    const fields = rowFields(v);
    if (p.model !== undefined) fields.model = p.model;
    else delete fields.model;
    return { rows: [{ line: 1, fields }], problems: [] };
  }
  return { rows: [], problems: [problem(file, 0, 'file', 'has no nightshift or parameters text chunk to re-run')] };
}

/** One row per job of a manifest (the last line per id wins, as for every manifest reader). */
export function parseManifestRows(file: string, text: string): ParseResult {
  const rows: RawRow[] = [];
  const problems: PromptProblem[] = [];
  const byId = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(raw) as Record<string, unknown>;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    } catch {
      problems.push(problem(file, line, 'line', 'not a JSON object (a manifest line is one JSON record)'));
      return;
    }
    const lacks = missing(v);
    if (lacks.length > 0) {
      problems.push(problem(file, line, lacks[0]!, 'is required in a manifest record'));
      return;
    }
    const row = { line, fields: rowFields(v) };
    const at = typeof v.id === 'string' ? byId.get(v.id) : undefined;
    if (at !== undefined) rows[at] = row;
    else {
      if (typeof v.id === 'string') byId.set(v.id, rows.length);
      rows.push(row);
    }
  });
  return { rows, problems };
}

export async function readExactRows(
  file: string,
  kind: ExactKind,
  maxBytes = DEFAULT_MAX_FILE_BYTES,
): Promise<ParseResult> {
  if (kind === 'png') return readPngRow(file, maxBytes);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      rows: [],
      problems: [
        problem(file, 0, 'file', code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? String(err)})`),
      ],
    };
  }
  if (bytes.length > maxBytes)
    return { rows: [], problems: [problem(file, 0, 'file', `file is too large (${bytes.length} bytes)`)] };
  const decoded = decodePromptBytes(file, bytes);
  if (!decoded.ok) return { rows: [], problems: [decoded.problem] };
  return parseManifestRows(file, decoded.text);
}
