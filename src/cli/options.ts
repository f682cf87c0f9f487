import { Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import { ASPECT_RATIOS, MODEL_IDS, OUTPUT_FORMATS, STYLE_PRESETS } from '../models.js';
import type { GenerationDefaults } from '../prompts/types.js';

/** Options every command takes (SPEC §3). */
export function common(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'Redis URL (env REDIS_URL; default 127.0.0.1:6379)')
    .option('--queue <name>', 'queue name (env NIGHTSHIFT_QUEUE; default nightshift, nightshift-mock with --mock)')
    .option('--out <dir>', 'output folder (env NIGHTSHIFT_OUT; default ./out)')
    .option('--mock', 'use the built-in mock of the Stability API (no key, no cost)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .addOption(new Option('--prefix <prefix>', 'Redis key prefix, a {hash tag} (env NIGHTSHIFT_PREFIX)').hideHelp());
}

export function generation(cmd: Command): Command {
  return cmd
    .option('--batch <name>', "batch name (default: the first file's base name)")
    .addOption(new Option('--model <model>', 'model').choices(MODEL_IDS))
    .option('--negative <text>', 'negative prompt')
    .addOption(new Option('--aspect-ratio <ratio>', 'aspect ratio (v2beta models)').choices(ASPECT_RATIOS))
    .option('--width <px>', 'width (v1 engines)')
    .option('--height <px>', 'height (v1 engines)')
    .option('--steps <n>', 'steps (v1 engines)')
    .option('--cfg-scale <n>', 'CFG scale (v1 engines, sd3.5-*)')
    .addOption(new Option('--style-preset <preset>', 'style preset').choices(STYLE_PRESETS))
    .addOption(new Option('--format <format>', 'output format (v2beta models)').choices(OUTPUT_FORMATS))
    .option('--samples <n>', 'images per prompt (seeds seed, seed+1, …)')
    .option('--seed <n>', 'seed for every prompt without its own')
    .option('--max-credits <n>', "the batch's budget in credits")
    .option('--max-jobs <n>', 'refuse a batch larger than this', '10000')
    .option('--dry-run', 'validate, expand and estimate; enqueue nothing')
    .option('--force', 'enqueue even when the estimate exceeds the balance')
    .option('--json', 'print the summary as JSON');
}

export function worker(cmd: Command): Command {
  return cmd
    .option('--concurrency <n>', 'requests in flight per worker', '64')
    .option('--rate <count/seconds>', 'the shared rate limit per API key', '150/10')
    .option('--lockout <seconds>', 'pause after a 429 without Retry-After', '60')
    .option('--request-timeout <seconds>', 'give up on a request after this long', '180')
    .option('--timeout-retries <n>', 'retries of a request that timed out (it may have been billed)', '1')
    .option('--log-file <path>', 'also write JSON logs to this file')
    .addOption(
      new Option('--lock-duration <seconds>', 'BullMQ job lock; a killed worker’s jobs return after it').hideHelp(),
    )
    .addOption(new Option('--stalled-interval <seconds>', 'how often stalled jobs are looked for').hideHelp())
    .addOption(new Option('--max-stalled <n>', 'stalls before a job fails').hideHelp())
    .addOption(new Option('--backoff <seconds>', 'base of the exponential retry backoff').hideHelp())
    .addOption(new Option('--rate-margin <seconds>', 'safety margin added to the rate window').hideHelp())
    .addOption(new Option('--breaker-threshold <n>', 'consecutive transient failures that pause the queue').hideHelp())
    .addOption(new Option('--probe-interval <seconds>', 'how often a paused circuit probes the API').hideHelp())
    .addOption(new Option('--grace <seconds>', 'how long in-flight requests may finish after a signal').hideHelp())
    .addOption(new Option('--watchdog <seconds>', 'restart consumption after this long without progress').hideHelp());
}

function int(flag: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag}: "${String(v)}" must be an integer from ${min} to ${max}`);
  return n;
}

function float(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag}: "${String(v)}" must be a number`);
  return n;
}

/** CLI generation flags → defaults for every prompt line (lines override them). Ranges are checked per model later. */
export function generationDefaults(o: Record<string, unknown>): GenerationDefaults {
  const d: GenerationDefaults = {};
  if (o.model !== undefined) d.model = o.model as GenerationDefaults['model'];
  if (o.negative !== undefined) d.negative_prompt = String(o.negative);
  if (o.aspectRatio !== undefined) d.aspect_ratio = o.aspectRatio as GenerationDefaults['aspect_ratio'];
  if (o.stylePreset !== undefined) d.style_preset = o.stylePreset as GenerationDefaults['style_preset'];
  if (o.format !== undefined) d.output_format = o.format as GenerationDefaults['output_format'];
  const width = int('width', o.width, 1);
  const height = int('height', o.height, 1);
  const steps = int('steps', o.steps, 1);
  const cfg = float('cfg-scale', o.cfgScale);
  const samples = int('samples', o.samples, 1, 100);
  const seed = int('seed', o.seed, 0, 4294967295);
  if (width !== undefined) d.width = width;
  if (height !== undefined) d.height = height;
  if (steps !== undefined) d.steps = steps;
  if (cfg !== undefined) d.cfg_scale = cfg;
  if (samples !== undefined) d.samples = samples;
  if (seed !== undefined) d.seed = seed;
  return d;
}

export function maxCredits(o: Record<string, unknown>): number | undefined {
  const n = float('max-credits', o.maxCredits);
  if (n !== undefined && n < 0) throw new UsageError('--max-credits must be ≥ 0');
  return n;
}

export function maxJobs(o: Record<string, unknown>): number {
  return int('max-jobs', o.maxJobs ?? '10000', 1)!;
}
