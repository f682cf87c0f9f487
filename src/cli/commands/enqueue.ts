import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { checkApiTransport, loadConfig, loadEnqueueConfig } from '../../config.js';
import { createLogger } from '../../logger.js';
import { enqueuePromptFiles, formatSummary, type EnqueueSummary } from '../../queue/enqueue.js';
import { openApiTarget } from '../../stability/target.js';
import { openQueueContext, redisUrlOf, type QueueContext } from '../../ops/context.js';
import { EnvironmentError } from '../../errors.js';
import type { ApiTarget } from '../../stability/target.js';
import type { StabilityClient } from '../../stability/client.js';
import { common, generation, withSettings } from '../options.js';
import { createRateLimiter, apiKeyId } from '../../billing/rate-limiter.js';
import { estimateBatch, formatEstimate, windowState } from '../../queue/window.js';
import { openOutput } from '../../output/storage/open.js';

export function enqueueCommand(program: Command): void {
  const cmd = program
    .command('enqueue')
    .description('validate prompt files whole, expand them and add their jobs to the queue')
    .argument(
      '<file...>',
      'prompt files (.txt, .jsonl, .csv), or a .png / manifest.jsonl to re-run exactly those images',
    );
  // The balance check counts against the same shared rate limit as the workers' requests.
  withSettings(generation(common(cmd)), ['rate', 'window']).action(
    async (files: string[], o: Record<string, unknown>) => {
      collectGarbageSooner();
      const config = loadConfig(o);
      const logger = createLogger({ level: config.logLevel, stream: process.stderr, secrets: config.secrets });
      const summary = await runEnqueue(files, o, { config, logger, redisUrl: redisUrlOf(config) });
      const e = loadEnqueueConfig(o);
      const estimate = estimateBatch({
        jobs: summary.dryRun ? summary.jobs : summary.added,
        rate: e.rate,
        window: e.window,
        now: new Date(),
      });
      const open = e.window === null || windowState(e.window, new Date()).open;
      process.stdout.write(
        e.json
          ? `${JSON.stringify({ ...summary, estimate })}\n`
          : `${formatSummary(summary)}\n${formatEstimate(estimate, open)}\n`,
      );
    },
  );
}

/**
 * Enqueue allocates fast and keeps little (job payloads live only until Redis has them), so V8's
 * default of letting the heap grow to about four times what survives a collection holds mostly
 * garbage: 100,000 prompts peaked near 400 MB. Twice what survives keeps the peak near 260 MB for
 * a few more collections. Only for the `enqueue` command: its process does nothing else.
 */
function collectGarbageSooner(): void {
  setFlagsFromString('--heap-growing-percent=100');
}

/** Shared by `enqueue` and `run`. The balance check is a request like any other: it takes a rate-limit slot. */
export async function runEnqueue(
  files: string[],
  o: Record<string, unknown>,
  env: { config: ReturnType<typeof loadConfig>; logger: ReturnType<typeof createLogger>; redisUrl: string },
): Promise<EnqueueSummary> {
  const { config, logger, redisUrl } = env;
  const e = loadEnqueueConfig(o);
  const opts = {
    files,
    defaults: e.defaults,
    maxJobs: e.maxJobs,
    dryRun: e.dryRun,
    force: e.force,
    ...(e.batch !== undefined ? { batch: e.batch } : {}),
    ...(e.maxCredits !== undefined ? { maxCredits: e.maxCredits } : {}),
    expansion: e.expansion,
    strict: e.strict,
  };
  const base = { logger, api: config.api.identity, out: config.out, output: openOutput(config) };
  if (opts.dryRun) return enqueuePromptFiles(opts, base);
  if (!config.mock && !config.api.key) {
    throw new EnvironmentError(
      'STABILITY_API_KEY is not set: export your key, or add --mock to use the built-in mock API',
    );
  }
  const insecure = checkApiTransport(config);
  if (insecure) logger.warn(insecure);
  let ctx: QueueContext | null = null;
  let target: ApiTarget | null = null;
  // The balance check and the engine list are requests like any other: each takes a slot of the shared limit.
  const api = async (): Promise<StabilityClient> => {
    target ??= await openApiTarget(config, { requestTimeoutMs: 30_000 });
    const limiter = createRateLimiter({
      redis: ctx!.redis,
      prefix: config.prefix,
      keyId: apiKeyId(target.apiKey),
      ...e.rate,
    });
    await limiter.acquire();
    return target.client;
  };
  try {
    return await enqueuePromptFiles(opts, {
      ...base,
      connect: async () => (ctx = await openQueueContext(config, redisUrl)),
      ...(config.mock
        ? {}
        : {
            getBalance: async () => (await api()).getBalance(),
            listEngines: async () => (await api()).listEngines(),
          }),
    });
  } finally {
    await (target as ApiTarget | null)?.close();
    await (ctx as QueueContext | null)?.close();
  }
}
