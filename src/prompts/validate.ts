import type { PromptProblem } from '../errors.js';
import { DEFAULT_MODEL, MODELS, SDXL_SIZES, type GenerationParams, type ModelId, type ParamName } from '../models.js';
import type { Row } from './row-schema.js';
import type { GenerationDefaults } from './types.js';

/** The CLI flag that sets each default, for "(set by --width)". */
export const DEFAULT_FLAGS: Readonly<Record<keyof GenerationDefaults, string>> = {
  model: '--model',
  negative_prompt: '--negative',
  aspect_ratio: '--aspect-ratio',
  width: '--width',
  height: '--height',
  steps: '--steps',
  cfg_scale: '--cfg-scale',
  style_preset: '--style-preset',
  output_format: '--format',
  samples: '--samples',
  seed: '--seed',
};

const PARAM_NAMES: readonly ParamName[] = [
  'aspect_ratio',
  'width',
  'height',
  'steps',
  'cfg_scale',
  'style_preset',
  'output_format',
];

/** A row's model, params, negative prompt, seed and samples, with defaults applied. */
export interface ResolvedRow {
  model: ModelId;
  params: GenerationParams;
  negative_prompt: string | null;
  seed: number | null;
  samples: number;
}

type Key = keyof GenerationDefaults;

/**
 * Validates one row against its model, merged with the CLI defaults (the row's values win).
 * Every problem is reported; a value from the CLI is attributed to its flag.
 */
export function resolveRow(
  file: string,
  line: number,
  row: Row,
  defaults: GenerationDefaults,
): { ok: true; resolved: ResolvedRow } | { ok: false; problems: PromptProblem[] } {
  const problems: PromptProblem[] = [];
  const fromCli = (k: Key): boolean => row[k] === undefined && defaults[k] !== undefined;
  const get = <K extends Key>(k: K): GenerationDefaults[K] => (row[k] ?? defaults[k]) as GenerationDefaults[K];
  const fail = (k: Key, message: string): void => {
    problems.push({ file, line, field: k, message: fromCli(k) ? `${message} (set by ${DEFAULT_FLAGS[k]})` : message });
  };

  const model = get('model') ?? DEFAULT_MODEL;
  const info = MODELS[model];
  const v1 = info.family === 'v1';
  const given: Partial<GenerationParams> = {};
  for (const p of PARAM_NAMES) {
    const value = get(p);
    if (value === undefined) continue;
    if (p === 'output_format' && v1) {
      // v1 engines always return PNG, so asking for png is harmless; anything else would be ignored.
      if (value !== 'png')
        fail(p, `not accepted by model ${model} (v1 engines return PNG only; use png or leave it unset)`);
      continue;
    }
    if (!info.params.has(p)) {
      fail(p, `not accepted by model ${model} (it takes ${[...info.params].join(', ')})`);
      continue;
    }
    (given as Record<string, unknown>)[p] = value;
  }
  const params: GenerationParams = { ...info.defaults, ...given } as GenerationParams;

  if (given.steps !== undefined && v1 && (given.steps < 10 || given.steps > 50)) {
    fail('steps', `must be between 10 and 50 for model ${model} (got ${given.steps})`);
  }
  if (given.cfg_scale !== undefined && info.cfgRange) {
    const [lo, hi] = info.cfgRange;
    if (given.cfg_scale < lo || given.cfg_scale > hi)
      fail('cfg_scale', `must be between ${lo} and ${hi} for model ${model} (got ${given.cfg_scale})`);
  }
  if (v1 && (given.width !== undefined || given.height !== undefined)) checkV1Size(model, params, given, fail);

  const negative = get('negative_prompt');
  if (negative !== undefined && negative.length > info.promptMax) {
    fail('negative_prompt', `must be at most ${info.promptMax} characters for model ${model} (got ${negative.length})`);
  }
  const negativeControl = negative === undefined ? null : controlCharProblem(negative);
  if (negativeControl) fail('negative_prompt', negativeControl);

  const seed = get('seed');
  const samples = get('samples') ?? 1;
  if (seed !== undefined) {
    if (seed > info.seedMax) {
      fail('seed', `must be at most ${info.seedMax} for model ${model} (got ${seed})`);
    } else if (seed + samples - 1 > info.seedMax) {
      // Samples use seeds seed, seed+1, …; the last must still be a valid seed.
      fail(
        'seed',
        `with samples ${samples} would use seeds up to ${seed + samples - 1}; the maximum for model ${model} is ${info.seedMax}`,
      );
    }
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    resolved: { model, params, negative_prompt: negative ? negative : null, seed: seed ?? null, samples },
  };
}

/** v1 sizes: multiples of 64; SDXL a fixed list of pairs; SD 1.6 320–1536 per side. */
function checkV1Size(
  model: ModelId,
  params: GenerationParams,
  given: Partial<GenerationParams>,
  fail: (k: Key, message: string) => void,
): void {
  // A side the line did not give comes from the model default, and the pair is checked.
  const width = params.width ?? 1024;
  const height = params.height ?? 1024;
  let sidesOk = true;
  for (const [k, v] of [
    ['width', given.width],
    ['height', given.height],
  ] as const) {
    if (v === undefined) continue;
    if (v % 64 !== 0) {
      fail(k, `must be a multiple of 64 for model ${model} (got ${v})`);
      sidesOk = false;
    } else if (model === 'stable-diffusion-v1-6' && (v < 320 || v > 1536)) {
      fail(k, `must be between 320 and 1536 for model ${model} (got ${v})`);
      sidesOk = false;
    }
  }
  if (
    sidesOk &&
    model === 'stable-diffusion-xl-1024-v1-0' &&
    !SDXL_SIZES.some(([w, h]) => w === width && h === height)
  ) {
    const sizes = SDXL_SIZES.map(([w, h]) => `${w}x${h}`).join(', ');
    fail(
      given.width !== undefined ? 'width' : 'height',
      `${width}x${height} is not a size ${model} accepts; use one of ${sizes}`,
    );
  }
}

/**
 * A control character in a prompt (other than tab and line breaks, which a CSV field may hold) is
 * almost always a file's damage, not a wish; the API would get it and a terminal showing the prompt
 * would obey it. Null when there is none.
 */
export function controlCharProblem(text: string): string | null {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
  const m = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.exec(text);
  if (!m) return null;
  const code = `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  return `contains the control character ${code} at character ${m.index + 1}; remove it`;
}

/** Checks one prompt (after variant expansion) against the model's length limit; null when fine. */
export function promptLengthProblem(prompt: string, model: ModelId): string | null {
  const max = MODELS[model].promptMax;
  return prompt.length > max ? `must be at most ${max} characters for model ${model} (got ${prompt.length})` : null;
}
