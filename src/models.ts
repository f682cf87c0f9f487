/**
 * What each model accepts and costs (as Stability's API documents them: v2beta Stable Image endpoints and the v1 engines).
 * The prompt parser validates against this table and the API client routes by it,
 * so a parameter a model does not take is caught before anything is enqueued.
 */

export const MODEL_IDS = [
  'core',
  'ultra',
  'sd3.5-large',
  'sd3.5-large-turbo',
  'sd3.5-medium',
  'sd3.5-flash',
  'stable-diffusion-v1-6',
  'stable-diffusion-xl-1024-v1-0',
] as const;
export type ModelId = (typeof MODEL_IDS)[number];
export const DEFAULT_MODEL: ModelId = 'core';

export const ASPECT_RATIOS = ['21:9', '16:9', '3:2', '5:4', '1:1', '4:5', '2:3', '9:16', '9:21'] as const;
export type AspectRatio = (typeof ASPECT_RATIOS)[number];

export const STYLE_PRESETS = [
  'enhance',
  'anime',
  'photographic',
  'digital-art',
  'comic-book',
  'fantasy-art',
  'line-art',
  'analog-film',
  'neon-punk',
  'isometric',
  'low-poly',
  'origami',
  'modeling-compound',
  'cinematic',
  '3d-model',
  'pixel-art',
  'tile-texture',
] as const;
export type StylePreset = (typeof STYLE_PRESETS)[number];

export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Generation parameters besides prompt, negative prompt, seed and samples. */
export type ParamName = 'aspect_ratio' | 'width' | 'height' | 'steps' | 'cfg_scale' | 'style_preset' | 'output_format';

/** Resolved parameters of one job: only the keys its model takes, defaults filled in. */
export interface GenerationParams {
  aspect_ratio?: AspectRatio;
  width?: number;
  height?: number;
  steps?: number;
  cfg_scale?: number;
  style_preset?: StylePreset;
  output_format: OutputFormat;
}

export type ApiFamily = 'v2beta' | 'v1';

export interface ModelInfo {
  id: ModelId;
  family: ApiFamily;
  /** Path of the text-to-image endpoint. */
  path: string;
  /** For sd3 endpoints, the `model` form field. */
  sd3Model?: string;
  /** Parameters this model accepts (output_format is accepted by v2beta models only). */
  params: ReadonlySet<ParamName>;
  promptMax: number;
  seedMax: number;
  cfgRange?: readonly [number, number];
  /** Defaults resolved into every job so ids and seeds stay stable. */
  defaults: Partial<GenerationParams>;
}

/** What each API family accepts in a request: the longest prompt and the largest seed. */
export const FAMILY_LIMITS: Readonly<Record<ApiFamily, { promptMax: number; seedMax: number }>> = {
  v2beta: { promptMax: 10000, seedMax: 4294967294 },
  v1: { promptMax: 2000, seedMax: 4294967295 },
};

function v2(id: ModelId, path: string, params: ParamName[], extra: Partial<ModelInfo> = {}): ModelInfo {
  return {
    id,
    family: 'v2beta',
    path,
    params: new Set<ParamName>([...params, 'aspect_ratio', 'style_preset', 'output_format']),
    ...FAMILY_LIMITS.v2beta,
    defaults: { aspect_ratio: '1:1', output_format: 'png' },
    ...extra,
  };
}

function v1(id: ModelId): ModelInfo {
  return {
    id,
    family: 'v1',
    path: `/v1/generation/${id}/text-to-image`,
    params: new Set<ParamName>(['width', 'height', 'steps', 'cfg_scale', 'style_preset']),
    ...FAMILY_LIMITS.v1,
    cfgRange: [0, 35],
    // The original script's request: cfg_scale 7, 1024x1024, 30 steps.
    defaults: { cfg_scale: 7, width: 1024, height: 1024, steps: 30, output_format: 'png' },
  };
}

const SD3_PATH = '/v2beta/stable-image/generate/sd3';

export const MODELS: Readonly<Record<ModelId, ModelInfo>> = {
  core: v2('core', '/v2beta/stable-image/generate/core', []),
  ultra: v2('ultra', '/v2beta/stable-image/generate/ultra', []),
  'sd3.5-large': v2('sd3.5-large', SD3_PATH, ['cfg_scale'], { sd3Model: 'sd3.5-large', cfgRange: [1, 10] }),
  'sd3.5-large-turbo': v2('sd3.5-large-turbo', SD3_PATH, ['cfg_scale'], {
    sd3Model: 'sd3.5-large-turbo',
    cfgRange: [1, 10],
  }),
  'sd3.5-medium': v2('sd3.5-medium', SD3_PATH, ['cfg_scale'], { sd3Model: 'sd3.5-medium', cfgRange: [1, 10] }),
  'sd3.5-flash': v2('sd3.5-flash', SD3_PATH, ['cfg_scale'], { sd3Model: 'sd3.5-flash', cfgRange: [1, 10] }),
  'stable-diffusion-v1-6': v1('stable-diffusion-v1-6'),
  'stable-diffusion-xl-1024-v1-0': v1('stable-diffusion-xl-1024-v1-0'),
};

/** The longest prompt and the largest seed any model takes: a line's bounds before its model is known. */
export const PROMPT_MAX = Math.max(...Object.values(FAMILY_LIMITS).map((l) => l.promptMax));
export const SEED_MAX = Math.max(...Object.values(FAMILY_LIMITS).map((l) => l.seedMax));
/** The API's rate limit per key: 150 requests in any 10 s. */
export const API_RATE_LIMIT = { count: 150, windowMs: 10_000 } as const;

/** Images per prompt line (`samples`, `--samples`): a typo of 10000 must not buy 10000 images. */
export const SAMPLES_MAX = 100;

export function isModelId(s: string): s is ModelId {
  return (MODEL_IDS as readonly string[]).includes(s);
}

/** SDXL 1.0 accepts only these sizes. */
export const SDXL_SIZES: ReadonlyArray<readonly [number, number]> = [
  [1024, 1024],
  [1152, 896],
  [896, 1152],
  [1216, 832],
  [832, 1216],
  [1344, 768],
  [768, 1344],
  [1536, 640],
  [640, 1536],
];

const FLAT_CREDITS: Partial<Record<ModelId, number>> = {
  core: 3,
  ultra: 8,
  'sd3.5-large': 6.5,
  'sd3.5-large-turbo': 4,
  'sd3.5-medium': 3.5,
  'sd3.5-flash': 2.5,
};

/** List price of one successful image, in credits (v1: 0.9 up to 30 steps, then proportional to steps). */
export function creditsPerImage(model: ModelId, params: Pick<GenerationParams, 'steps'>): number {
  const flat = FLAT_CREDITS[model];
  if (flat !== undefined) return flat;
  const steps = params.steps ?? 30;
  // v1: 0.9 credits up to 30 steps, then proportional to steps; rounded to avoid float dust in sums.
  return Math.round(0.9 * Math.max(1, steps / 30) * 1e6) / 1e6;
}

/** File extension of a job's image. v1 engines always return PNG. */
export function outputExtension(params: GenerationParams): 'png' | 'jpg' | 'webp' {
  return params.output_format === 'jpeg' ? 'jpg' : params.output_format;
}
