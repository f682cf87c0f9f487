import { z } from 'zod';
import type { GenerationParams, ModelId } from '../models.js';

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp';

/** How the API says a generation ended. ERROR comes with no image and is not billed. */
export const ApiFinishReason = z.enum(['SUCCESS', 'CONTENT_FILTERED', 'ERROR']);
export type ApiFinishReason = z.infer<typeof ApiFinishReason>;

/** The endings that come with a paid image: what a result, a stash and a record carry. */
export const FinishReason = ApiFinishReason.exclude(['ERROR']);
export type FinishReason = z.infer<typeof FinishReason>;

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
