import type { GenerationParams, ModelId } from '../models.js';

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp';
export type FinishReason = 'SUCCESS' | 'CONTENT_FILTERED';

/** One job's request: one image. */
export interface GenerateRequest {
  model: ModelId;
  prompt: string;
  negative_prompt: string | null;
  params: GenerationParams;
  seed: number;
}

export interface GenerateResult {
  bytes: Buffer;
  mime: ImageMime;
  /** The seed the API reports (it picks one when asked for seed 0). */
  seed: number;
  finishReason: FinishReason;
  requestId?: string;
  /**
   * Oddities in an answer that was still used (a seed header out of range, say), for the caller to
   * log. The image is paid for, so they never make the call fail.
   */
  warnings: string[];
}

/** Response headers as undici gives them. */
export type HeaderMap = Record<string, string | string[] | undefined>;
