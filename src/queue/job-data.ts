import { z } from 'zod';
import { ASPECT_RATIOS, MODEL_IDS, OUTPUT_FORMATS, STYLE_PRESETS } from '../models.js';

/**
 * The payload of one BullMQ job: one request, one image. Validated again in the worker,
 * because old jobs and other producers exist.
 */
export const generationParamsSchema = z
  .object({
    aspect_ratio: z.enum(ASPECT_RATIOS).optional(),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    steps: z.number().int().optional(),
    cfg_scale: z.number().optional(),
    style_preset: z.enum(STYLE_PRESETS).optional(),
    output_format: z.enum(OUTPUT_FORMATS),
  })
  .strict();

export const jobDataSchema = z
  .object({
    v: z.literal(1),
    batch: z.string(),
    /** The API this job is meant for: `mock`, or the API host URL. A worker never runs another API's job. */
    api: z.string(),
    source: z.string(),
    line: z.number().int(),
    /** 1-based position in the batch; the file name starts with it. */
    index: z.number().int().positive(),
    /** 0-based sample number of the prompt line. */
    sample: z.number().int().nonnegative(),
    prompt: z.string(),
    negative_prompt: z.string().nullable(),
    model: z.enum(MODEL_IDS),
    params: generationParamsSchema,
    seed: z.number().int().nonnegative(),
    /** List price of the image in credits. */
    credits: z.number().nonnegative(),
    /** Image path relative to the batch folder, fixed at enqueue time. */
    file: z.string(),
    /** Times a 429 sent this job back; bounded so a job cannot loop forever. */
    rate_limited: z.number().int().nonnegative().default(0),
    /** Requests whose outcome was unknowable (timeouts, lost connections): possibly billed. */
    maybe_billed: z.number().int().nonnegative().default(0),
    /** Times a refusing disk delayed writing this job's paid image. */
    storage_delays: z.number().int().nonnegative().default(0),
  })
  .strict();

export type JobData = z.infer<typeof jobDataSchema>;
