import type { GenerationParams, ModelId, OutputFormat, AspectRatio, StylePreset } from '../models.js';

/**
 * Defaults from the command line (`--model`, `--negative`, …). A prompt line's own
 * values override them. Every field is optional: unset means "the model's default".
 */
export interface GenerationDefaults {
  model?: ModelId;
  negative_prompt?: string;
  aspect_ratio?: AspectRatio;
  width?: number;
  height?: number;
  steps?: number;
  cfg_scale?: number;
  style_preset?: StylePreset;
  output_format?: OutputFormat;
  samples?: number;
  seed?: number;
}

/**
 * One validated prompt after variant expansion, before samples are expanded into jobs.
 * `params` holds only the keys the model takes, with the model's defaults filled in.
 */
export interface PromptSpec {
  /** The file as given on the command line. */
  source: string;
  /** 1-based line of the file (for CSV, the line the record starts on). */
  line: number;
  /** The line's own `id`, if it gave one (jsonl/csv). */
  id?: string;
  prompt: string;
  negative_prompt: string | null;
  model: ModelId;
  params: GenerationParams;
  /** Explicit seed (line or `--seed`); null means derive one. */
  seed: number | null;
  samples: number;
}
