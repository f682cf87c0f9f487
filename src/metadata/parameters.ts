import { ASPECT_RATIOS, OUTPUT_FORMATS, STYLE_PRESETS, isModelId } from '../models.js';
import type { GenerationParams, ModelId } from '../models.js';

/**
 * The "parameters" text of the AUTOMATIC1111 Stable Diffusion WebUI, which other tools
 * (A1111's PNG Info, ComfyUI loaders, Civitai, image viewers) read from PNG text chunks:
 *
 *   <prompt, may span lines>
 *   Negative prompt: <negative prompt, may span lines>
 *   Steps: 30, CFG scale: 7, Seed: 123, Size: 1024x1024, Model: core, …
 *
 * Values containing ',', ':' or a newline are JSON-quoted, as A1111 does.
 * Known ambiguity of the format: a prompt line starting with "Negative prompt:" is read as
 * the start of the negative prompt (the `nightshift` JSON chunk carries the exact values).
 */

export interface ParametersJob {
  prompt: string;
  negative_prompt: string | null;
  model: string;
  params: Partial<GenerationParams>;
  seed: number;
}

const NEGATIVE = 'Negative prompt:';

/** A1111's quote(): leave plain values alone, JSON-quote the ones the line syntax would break on. */
function quote(v: string): string {
  return /[,:\n"]/.test(v) ? JSON.stringify(v) : v;
}

export function formatParameters(job: ParametersJob, extra: { jobId?: string } = {}): string {
  const p = job.params;
  const pairs: Array<[string, string | number | undefined]> = [
    ['Steps', p.steps],
    ['CFG scale', p.cfg_scale],
    ['Seed', job.seed],
    ['Size', p.width !== undefined && p.height !== undefined ? `${p.width}x${p.height}` : undefined],
    ['Model', job.model],
    ['Aspect ratio', p.aspect_ratio],
    ['Style preset', p.style_preset],
    ['Format', p.output_format],
    ['Nightshift job', extra.jobId],
  ];
  const last = pairs
    .filter((kv): kv is [string, string | number] => kv[1] !== undefined && kv[1] !== '')
    .map(([k, v]) => `${k}: ${quote(String(v))}`)
    .join(', ');
  const lines = [job.prompt];
  if (job.negative_prompt !== null && job.negative_prompt !== '') lines.push(`${NEGATIVE} ${job.negative_prompt}`);
  lines.push(last);
  return lines.join('\n');
}

export interface ParsedParameters {
  prompt: string;
  negative_prompt: string | null;
  /** Every `Key: value` pair of the last line, unquoted, in order. */
  values: Record<string, string>;
  /** The pairs nightshift knows, typed back (absent when missing or not valid). */
  model?: ModelId;
  seed?: number;
  params: Partial<GenerationParams>;
  jobId?: string;
}

// A1111's re_param, `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`, read the way that regex reads it
// but in linear time. Run with matchAll over a 200 KB line that is not parameters, the regex retried
// from every position, each try scanning to the end of the line (55 s). Here each pair is matched
// once, anchored where the last one ended, and a quoted value's closing quote is found through a
// memo, so no character is scanned twice however many values open a quote they never close.
const RE_KEY = /\s*(\w[\w \-/]+):\s*/y;
const LINE_TERMINATORS = new Set(['\n', '\r', '\u2028', '\u2029']);

/** Where a quoted value's closing quote is, per start of its contents; -1 when it never closes. */
class QuoteCloser {
  /** 0: not known yet; else the closing index + 1, or -1 for "never closes". */
  private memo: Int32Array | null = null;
  constructor(private readonly s: string) {}

  /** The closing quote of the string whose contents start at `from`, as `(?:\\.|[^\\"])+"` finds it. */
  close(from: number): number {
    if (this.s[from] === '"') return -1; // `+`: at least one character inside
    const memo = (this.memo ??= new Int32Array(this.s.length + 1));
    const path: number[] = [];
    let j = from;
    let result: number;
    for (;;) {
      const known = memo[j]!;
      if (known !== 0) {
        result = known === -1 ? -1 : known - 1;
        break;
      }
      path.push(j);
      const c = this.s[j];
      if (c === undefined) result = -1;
      else if (c === '"') result = j;
      else if (c !== '\\') {
        j += 1;
        continue;
      } else if (j + 1 < this.s.length && !LINE_TERMINATORS.has(this.s[j + 1]!)) {
        j += 2;
        continue;
      } else result = -1;
      break;
    }
    for (const p of path) memo[p] = result === -1 ? -1 : result + 1;
    return result;
  }
}

/** The value starting at `at` and where the next pair starts (past the comma). */
function readValue(line: string, at: number, quotes: QuoteCloser): { value: string; next: number } {
  if (line[at] === '"') {
    const close = quotes.close(at + 1);
    if (close >= 0 && (close + 1 === line.length || line[close + 1] === ',')) {
      return { value: line.slice(at, close + 1), next: Math.min(close + 2, line.length) };
    }
  }
  const comma = line.indexOf(',', at);
  return comma < 0 ? { value: line.slice(at), next: line.length } : { value: line.slice(at, comma), next: comma + 1 };
}

function parsePairs(line: string): Record<string, string> | null {
  const values: Record<string, string> = {};
  const quotes = new QuoteCloser(line);
  let count = 0;
  let at = 0;
  while (at < line.length) {
    RE_KEY.lastIndex = at;
    const k = RE_KEY.exec(line);
    if (k === null) break;
    const { value, next } = readValue(line, RE_KEY.lastIndex, quotes);
    at = next;
    let v = value.trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
      try {
        v = String(JSON.parse(v));
      } catch {
        // Not valid JSON after all: keep the raw text.
      }
    }
    values[k[1]!.trim()] = v;
    count++;
  }
  // Like A1111, a last line with fewer than 3 pairs is prompt text, not parameters.
  return count >= 3 && at === line.length ? values : null;
}

function num(v: string | undefined, int: boolean): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n))) return undefined;
  return n;
}

function oneOf<T extends string>(list: readonly T[], v: string | undefined): T | undefined {
  return v !== undefined && (list as readonly string[]).includes(v) ? (v as T) : undefined;
}

/** The inverse of formatParameters; also reads parameters written by A1111 and friends. */
export function parseParameters(text: string): ParsedParameters {
  const lines = text.split('\n');
  let values: Record<string, string> = {};
  if (lines.length > 1 || parsePairs(lines[0] ?? '') !== null) {
    const parsed = parsePairs(lines[lines.length - 1] ?? '');
    if (parsed !== null) {
      values = parsed;
      lines.pop();
    }
  }
  const negAt = lines.findIndex((l) => l.startsWith(NEGATIVE));
  const promptLines = negAt < 0 ? lines : lines.slice(0, negAt);
  let negative: string | null = null;
  if (negAt >= 0) {
    const first = lines[negAt]!.slice(NEGATIVE.length).replace(/^ /, '');
    negative = [first, ...lines.slice(negAt + 1)].join('\n');
  }

  const params: Partial<GenerationParams> = {};
  const steps = num(values['Steps'], true);
  if (steps !== undefined) params.steps = steps;
  const cfg = num(values['CFG scale'], false);
  if (cfg !== undefined) params.cfg_scale = cfg;
  const size = /^(\d+)x(\d+)$/.exec(values['Size'] ?? '');
  if (size) {
    params.width = Number(size[1]);
    params.height = Number(size[2]);
  }
  const ar = oneOf(ASPECT_RATIOS, values['Aspect ratio']);
  if (ar) params.aspect_ratio = ar;
  const style = oneOf(STYLE_PRESETS, values['Style preset']);
  if (style) params.style_preset = style;
  const format = oneOf(OUTPUT_FORMATS, values['Format']);
  if (format) params.output_format = format;

  const result: ParsedParameters = { prompt: promptLines.join('\n'), negative_prompt: negative, values, params };
  const model = values['Model'];
  if (model !== undefined && isModelId(model)) result.model = model;
  const seed = num(values['Seed'], true);
  if (seed !== undefined) result.seed = seed;
  if (values['Nightshift job'] !== undefined) result.jobId = values['Nightshift job'];
  return result;
}
