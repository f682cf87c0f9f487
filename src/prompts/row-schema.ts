import { z } from 'zod';
import { NAME, NAME_RULE } from '../names.js';
import type { PromptProblem } from '../errors.js';
import {
  ASPECT_RATIOS,
  MODEL_IDS,
  OUTPUT_FORMATS,
  PROMPT_MAX,
  SAMPLES_MAX,
  SEED_MAX,
  STYLE_PRESETS,
} from '../models.js';

/** The columns a prompt line may set, in every format. */
export const ROW_KEYS = [
  'prompt',
  'id',
  'negative_prompt',
  'model',
  'seed',
  'samples',
  'aspect_ratio',
  'width',
  'height',
  'steps',
  'cfg_scale',
  'style_preset',
  'output_format',
] as const;
export type RowKey = (typeof ROW_KEYS)[number];

/** Columns that hold numbers (CSV delivers them as text). */
export const NUMERIC_KEYS: ReadonlySet<string> = new Set(['seed', 'samples', 'width', 'height', 'steps', 'cfg_scale']);

export function isRowKey(key: string): key is RowKey {
  return (ROW_KEYS as readonly string[]).includes(key);
}

/** One line of a prompt file as a parser found it: known keys only, values not yet checked. */
export interface RawRow {
  line: number;
  fields: Record<string, unknown>;
}

export interface ParseResult {
  rows: RawRow[];
  problems: PromptProblem[];
}

function shown(input: unknown): string {
  const s = typeof input === 'string' ? JSON.stringify(input) : String(input);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
}

/** A message that also says what was given, so the user can find the value in the line. */
function msg(what: string) {
  return {
    error: (iss: { input?: unknown }) =>
      iss.input === undefined ? 'is required' : `${what} (got ${shown(iss.input)})`,
  };
}

function intIn(min: number, max: number) {
  const m = msg(`must be an integer between ${min} and ${max}`);
  return z.number(m).int(m).min(min, m).max(max, m);
}

function positiveInt() {
  const m = msg('must be a positive integer');
  return z.number(m).int(m).min(1, m);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, msg(`must be one of ${values.join(', ')}`));
}

function text(max: number) {
  return z
    .string(msg('must be a string'))
    .trim()
    .max(max, { error: (iss) => `must be at most ${max} characters (got ${String((iss.input as string).length)})` });
}

export const rowSchema = z
  .object({
    prompt: text(PROMPT_MAX).min(1, { error: 'must not be empty' }),
    id: z
      .string(msg('must be a string'))
      // The id ends up in job ids and file names.
      .regex(NAME, msg(`must be ${NAME_RULE}`)),
    negative_prompt: text(PROMPT_MAX),
    model: oneOf(MODEL_IDS),
    seed: intIn(0, SEED_MAX),
    samples: intIn(1, SAMPLES_MAX),
    aspect_ratio: oneOf(ASPECT_RATIOS),
    width: positiveInt(),
    height: positiveInt(),
    steps: positiveInt(),
    cfg_scale: z.number(msg('must be a number')),
    style_preset: oneOf(STYLE_PRESETS),
    output_format: oneOf(OUTPUT_FORMATS),
  })
  .partial({
    id: true,
    negative_prompt: true,
    model: true,
    seed: true,
    samples: true,
    aspect_ratio: true,
    width: true,
    height: true,
    steps: true,
    cfg_scale: true,
    style_preset: true,
    output_format: true,
  })
  .strict();

export type Row = z.output<typeof rowSchema>;

/** The command-line defaults take the same values as a line, minus prompt and id. */
export const defaultsSchema = rowSchema.omit({ prompt: true, id: true });

export function unknownKeyProblem(file: string, line: number, key: string, what: 'key' | 'column'): PromptProblem {
  return { file, line, field: key, message: `unknown ${what}; expected one of ${ROW_KEYS.join(', ')}` };
}

/** One problem per field (the first issue found), named by `fieldName(key)`. */
export function issuesToProblems(
  file: string,
  line: number,
  issues: readonly z.core.$ZodIssue[],
  fieldName: (key: string) => string = (k) => k,
): PromptProblem[] {
  const seen = new Set<string>();
  const out: PromptProblem[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) out.push(unknownKeyProblem(file, line, fieldName(k), 'key'));
      continue;
    }
    const key = iss.path.length > 0 ? String(iss.path[0]) : 'row';
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ file, line, field: fieldName(key), message: iss.message });
  }
  return out;
}

/** Checks one raw row's types and basic ranges (the same for every format). */
export function checkRow(file: string, raw: RawRow): { ok: true; row: Row } | { ok: false; problems: PromptProblem[] } {
  const res = rowSchema.safeParse(raw.fields);
  if (res.success) return { ok: true, row: res.data };
  return { ok: false, problems: issuesToProblems(file, raw.line, res.error.issues) };
}
