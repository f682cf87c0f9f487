import { z } from 'zod';
import { ERROR_CLASSES } from '../errors.js';
import { MODEL_IDS } from '../models.js';
import { generationParamsSchema } from '../queue/job-data.js';

/** One manifest line / one sidecar. */
export const manifestRecordSchema = z.object({
  id: z.string(),
  batch: z.string(),
  source: z.string(),
  line: z.number().int(),
  index: z.number().int(),
  sample: z.number().int(),
  prompt: z.string(),
  negative_prompt: z.string().nullable(),
  model: z.enum(MODEL_IDS),
  params: generationParamsSchema,
  /** The seed the API returned (else the one requested). */
  seed: z.number().int(),
  status: z.enum(['succeeded', 'filtered', 'failed']),
  /** Relative to the batch folder, or null when there is no image. */
  file: z.string().nullable(),
  bytes: z.number().int().nullable(),
  sha256: z.string().nullable(),
  /** Credits billed for this job (list price; 0 when nothing was billed). */
  credits: z.number(),
  attempts: z.number().int(),
  started_at: z.string().nullable(),
  finished_at: z.string(),
  duration_ms: z.number().nullable(),
  error: z
    .object({
      class: z.enum([...ERROR_CLASSES, 'cancelled', 'stalled', 'internal']),
      status: z.number().int().nullable(),
      name: z.string(),
      message: z.string(),
    })
    .nullable(),
});

export type ManifestRecord = z.infer<typeof manifestRecordSchema>;
