/**
 * Request validation as strict as the real API's (fields, enums, ranges, SDXL's sizes), so a client
 * bug shows up against the fake, not on the first paid night.
 */
import { Response } from 'undici';
import {
  ASPECT_RATIOS,
  FAMILY_LIMITS,
  OUTPUT_FORMATS,
  SDXL_SIZES,
  STYLE_PRESETS,
  type ModelId,
  type OutputFormat,
} from '../models.js';
import { errorReply, type ErrorReply, type Family } from './bodies.js';

const V2 = FAMILY_LIMITS.v2beta;
const V1 = FAMILY_LIMITS.v1;

export const V1_ENGINES = ['stable-diffusion-v1-6', 'stable-diffusion-xl-1024-v1-0'] as const;
export const SD3_MODELS = ['sd3.5-large', 'sd3.5-large-turbo', 'sd3.5-medium', 'sd3.5-flash'] as const;

/** A valid generation request. */
export interface GenCall {
  family: Family;
  model: ModelId;
  prompt: string;
  /** Every text the moderation looks at (negative prompts included, as the real API does). */
  texts: string[];
  /** Requested seed; 0 means "pick one". */
  seed: number;
  format: OutputFormat;
  accept: 'image' | 'json';
  samples: number;
  steps?: number;
}

export type Validation = { ok: true; call: GenCall } | { ok: false; reply: ErrorReply };

const isInt = (n: number, min: number, max: number): boolean => Number.isInteger(n) && n >= min && n <= max;
const oneOf = (list: readonly string[]): string => `must be one of ${list.join(', ')}`;

export async function validateV2(
  endpoint: 'core' | 'ultra' | 'sd3',
  contentType: string | undefined,
  accept: string | undefined,
  body: Buffer,
): Promise<Validation> {
  const bad = (errors: string[]): Validation => {
    const r = errorReply('v2', 400, 'bad_request', errors[0]!);
    r.body.errors = errors;
    return { ok: false, reply: r };
  };
  if (!contentType?.toLowerCase().startsWith('multipart/form-data'))
    return bad(['content-type: must be multipart/form-data']);
  let form: Awaited<ReturnType<Response['formData']>>;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch {
    return bad(['body: malformed multipart/form-data']);
  }
  const field = (k: string): string | undefined => {
    const v = form.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  const errors: string[] = [];
  const prompt = field('prompt');
  if (prompt === undefined || prompt.length === 0) errors.push('prompt: is required');
  else if (prompt.length > V2.promptMax) errors.push(`prompt: must be at most ${V2.promptMax} characters`);
  const negative = field('negative_prompt');
  if (negative !== undefined && negative.length > V2.promptMax)
    errors.push(`negative_prompt: must be at most ${V2.promptMax} characters`);
  const seedStr = field('seed');
  const seed = seedStr === undefined || seedStr === '' ? 0 : Number(seedStr);
  if (!isInt(seed, 0, V2.seedMax)) errors.push(`seed: must be an integer between 0 and ${V2.seedMax}`);
  const ar = field('aspect_ratio');
  if (ar !== undefined && !(ASPECT_RATIOS as readonly string[]).includes(ar))
    errors.push(`aspect_ratio: ${oneOf(ASPECT_RATIOS)}`);
  const format = field('output_format') ?? 'png';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) errors.push(`output_format: ${oneOf(OUTPUT_FORMATS)}`);
  const style = field('style_preset');
  if (style !== undefined && !(STYLE_PRESETS as readonly string[]).includes(style))
    errors.push(`style_preset: ${oneOf(STYLE_PRESETS)}`);
  let model: ModelId = endpoint === 'sd3' ? 'sd3.5-large' : endpoint;
  if (endpoint === 'sd3') {
    const m = field('model') ?? 'sd3.5-large';
    if (!(SD3_MODELS as readonly string[]).includes(m)) errors.push(`model: ${oneOf(SD3_MODELS)}`);
    else model = m as ModelId;
    const cfg = field('cfg_scale');
    if (cfg !== undefined && !(Number(cfg) >= 1 && Number(cfg) <= 10))
      errors.push('cfg_scale: must be a number between 1 and 10');
    const mode = field('mode') ?? 'text-to-image';
    if (mode !== 'text-to-image' && mode !== 'image-to-image')
      errors.push(`mode: ${oneOf(['text-to-image', 'image-to-image'])}`);
    if (mode === 'image-to-image' && !form.has('image')) errors.push('image: is required when mode is image-to-image');
  }
  if (errors.length > 0) return bad(errors);
  const texts = negative ? [prompt!, negative] : [prompt!];
  const json = accept?.toLowerCase().includes('application/json') ?? false;
  return {
    ok: true,
    call: {
      family: 'v2',
      model,
      prompt: prompt!,
      texts,
      seed,
      format: format as OutputFormat,
      accept: json ? 'json' : 'image',
      samples: 1,
    },
  };
}

export function validateV1(
  engine: ModelId,
  contentType: string | undefined,
  accept: string | undefined,
  body: Buffer,
): Validation {
  const bad = (message: string, name = 'bad_request'): Validation => ({
    ok: false,
    reply: errorReply('v1', 400, name, message),
  });
  if (!contentType?.toLowerCase().startsWith('application/json')) return bad('content-type: must be application/json');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return bad('body: invalid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('body: must be a JSON object');
  const o = json as Record<string, unknown>;
  const tp = o.text_prompts;
  if (!Array.isArray(tp) || tp.length === 0) return bad('text_prompts: must contain at least one item');
  const texts: string[] = [];
  let prompt: string | undefined;
  for (const [i, p] of tp.entries()) {
    const text = (p as { text?: unknown } | null)?.text;
    const weight = (p as { weight?: unknown } | null)?.weight ?? 1;
    if (typeof text !== 'string' || text.length === 0) return bad(`text_prompts[${i}].text: is required`);
    if (text.length > 2000) return bad(`text_prompts[${i}].text: must be at most 2000 characters`);
    if (typeof weight !== 'number') return bad(`text_prompts[${i}].weight: must be a number`);
    texts.push(text);
    if (weight >= 0) prompt ??= text;
  }
  if (prompt === undefined) return bad('text_prompts: at least one prompt must have a positive weight');
  const num = (k: string, dflt: number): number => (o[k] === undefined ? dflt : typeof o[k] === 'number' ? o[k] : NaN);
  const steps = num('steps', 30);
  if (!isInt(steps, 10, 50)) return bad('steps: must be an integer between 10 and 50');
  const cfg = num('cfg_scale', 7);
  if (!(cfg >= 0 && cfg <= 35)) return bad('cfg_scale: must be a number between 0 and 35');
  const samples = num('samples', 1);
  if (!isInt(samples, 1, 10)) return bad('samples: must be an integer between 1 and 10');
  const seed = num('seed', 0);
  if (!isInt(seed, 0, V1.seedMax)) return bad(`seed: must be an integer between 0 and ${V1.seedMax}`);
  if (o.style_preset !== undefined && !(STYLE_PRESETS as readonly string[]).includes(String(o.style_preset))) {
    return bad(`style_preset: ${oneOf(STYLE_PRESETS)}`);
  }
  const sdxl = engine === 'stable-diffusion-xl-1024-v1-0';
  const w = num('width', sdxl ? 1024 : 512);
  const h = num('height', sdxl ? 1024 : 512);
  if (!isInt(w, 128, 100000) || !isInt(h, 128, 100000) || w % 64 !== 0 || h % 64 !== 0) {
    return bad('height and width must be multiples of 64 and at least 128', 'invalid_height_or_width');
  }
  if (sdxl && !SDXL_SIZES.some(([sw, sh]) => sw === w && sh === h)) {
    const allowed = SDXL_SIZES.map(([sw, sh]) => `${sw}x${sh}`).join(', ');
    return bad(
      `for ${engine} the allowed dimensions are ${allowed}, but requested ${w}x${h}`,
      'invalid_height_or_width',
    );
  }
  if (!sdxl && (w < 320 || w > 1536 || h < 320 || h > 1536)) {
    return bad(
      `for ${engine} each side must be between 320 and 1536 pixels, but requested ${w}x${h}`,
      'invalid_height_or_width',
    );
  }
  const wantsPng = accept?.toLowerCase().includes('image/png') ?? false;
  if (wantsPng && samples > 1) {
    return bad(
      'Sample count may only be greater than 1 when the accept header is set to `application/json`',
      'invalid_samples',
    );
  }
  return {
    ok: true,
    call: {
      family: 'v1',
      model: engine,
      prompt,
      texts,
      seed,
      format: 'png',
      accept: wantsPng ? 'image' : 'json',
      samples,
      steps,
    },
  };
}
