import type { Command } from 'commander';
import { describeSettings, loadConfig, settingsOf, type Config } from '../../config.js';
import { apiKeyId } from '../../billing/rate-limiter.js';
import { parseChoice, parseDecimal } from '../../config/parse.js';
import { RECORD_ERROR_CLASSES, UsageError } from '../../errors.js';
import { checkName } from '../../names.js';
import { openQueueContext, redisUrlOf, type QueueContext } from '../../ops/context.js';
import { common, withSettings } from '../options.js';
import { queueStatus, formatStatus } from '../../ops/status.js';
import { buildReport, reportNotes } from '../../ops/report.js';
import { openOutput } from '../../output/storage/open.js';
import { cancelBatch, retryFailed } from '../../ops/cancel-retry.js';
import { resumeQueue } from '../../ops/resume.js';

async function withContext<T>(
  o: Record<string, unknown>,
  fn: (ctx: Awaited<ReturnType<typeof openQueueContext>>, config: ReturnType<typeof loadConfig>) => Promise<T>,
): Promise<T> {
  const config = loadConfig(o);
  const ctx = await openQueueContext(config, redisUrlOf(config));
  try {
    return await fn(ctx, config);
  } finally {
    await ctx.close();
  }
}

/**
 * A mistyped `--batch` must not read as an empty batch. `--watch` may start before the batch is
 * enqueued, so it is not checked there.
 */
async function requireKnownBatch(ctx: QueueContext, config: Config, batch: string): Promise<void> {
  if ((await ctx.state.batches()).includes(batch)) return;
  const hint = config.mock ? '' : ' (a batch run with --mock needs --mock)';
  throw new UsageError(`--batch: there is no batch ${JSON.stringify(batch)} for API ${config.api.identity}${hint}`);
}

export function adminCommands(program: Command): void {
  // --rate: the workers' shared limit, to show how much of it is used (the same default as `work`).
  withSettings(common(program.command('status').description('counts for the queue and per batch')), [
    'batch',
    'json',
    'watch',
    'rate',
  ]).action(async (o: Record<string, unknown>) => {
    const rate = settingsOf(o)('rate');
    const rateIsDefault = describeSettings(['rate'], o)[0]!.source === 'default';
    await withContext(o, async (ctx, config) => {
      if (o.batch !== undefined && !o.watch) await requireKnownBatch(ctx, config, String(o.batch));
      // The limiter is keyed by a hash of the API key; without a key (or --mock) there is nothing to look up.
      const key = config.mock ? 'mock' : config.api.key;
      const opts = {
        out: config.out,
        output: openOutput(config),
        ...(o.batch !== undefined ? { batch: String(o.batch) } : {}),
        rate: { ...rate, ...(key ? { keyId: apiKeyId(key) } : {}) },
        rateIsDefault,
      };
      for (;;) {
        const s = await queueStatus(ctx, opts);
        const text = o.json ? JSON.stringify(s) : formatStatus(s);
        process.stdout.write(o.watch && !o.json && process.stdout.isTTY ? `\x1b[2J\x1b[H${text}\n` : `${text}\n`);
        if (!o.watch) return;
        await new Promise((r) => setTimeout(r, 2000));
      }
    });
  });

  common(program.command('report').description('rebuild manifest.jsonl and index.html of a batch from what is on disk'))
    .requiredOption('--batch <name>', 'the batch')
    .option('--json', 'print the summary as JSON')
    .action(async (o: Record<string, unknown>) => {
      const config = loadConfig(o);
      const r = await buildReport(
        config.out,
        { api: config.api.identity, batch: String(o.batch) },
        { output: openOutput(config) },
      );
      const { records: _records, ...summary } = r;
      process.stdout.write(
        o.json
          ? `${JSON.stringify(summary)}\n`
          : `${r.jobs} jobs: ${r.succeeded} succeeded, ${r.filtered} filtered, ${r.failed} failed; ${r.credits} credits` +
              (r.repaired.missing || r.repaired.truncated
                ? ` (repaired: ${r.repaired.missing} missing, ${r.repaired.truncated} bad lines)`
                : '') +
              `\nmanifest: ${r.manifest}\ngallery:  ${r.gallery}\n` +
              reportNotes(r)
                .map((n) => `${n}\n`)
                .join(''),
      );
    });

  common(program.command('pause').description('stop taking jobs, for every worker on the queue')).action(
    async (o: Record<string, unknown>) => {
      await withContext(o, async (ctx, config) => {
        await ctx.control.pause('manual', 'paused with `nightshift pause`');
        process.stdout.write(`queue ${config.queue} paused; in-flight requests finish\n`);
      });
    },
  );

  common(
    program
      .command('resume')
      .description(
        "start taking jobs again (also after a 401/402, a retired engine, a full disk, the circuit breaker or the workers' key's 429 lockout)",
      ),
  ).action(async (o: Record<string, unknown>) => {
    await withContext(o, async (ctx, config) => {
      const ownKey = config.mock ? 'mock' : config.api.key;
      const r = await resumeQueue(ctx, ownKey ? { ownKeyId: apiKeyId(ownKey) } : {});
      process.stdout.write(
        `queue ${config.queue} resumed` +
          (r.liftedLockoutMs > 0 ? `; lifted a 429 lockout (${Math.ceil(r.liftedLockoutMs / 1000)} s were left)` : '') +
          '\n',
      );
    });
  });

  common(program.command('cancel').description("remove a batch's waiting and delayed jobs (in-flight ones finish)"))
    .requiredOption('--batch <name>', 'the batch')
    .action(async (o: Record<string, unknown>) => {
      checkName(String(o.batch), '--batch', 'batch');
      await withContext(o, async (ctx, config) => {
        const r = await cancelBatch(ctx, config, String(o.batch));
        const notes = [
          r.finished > 0 ? `${r.finished} already saved (their images are kept and recorded)` : '',
          r.kept > 0 ? `${r.kept} left to run: their paid images wait in Redis to be written` : '',
          r.unrecorded.count > 0
            ? `${r.unrecorded.count} without a record, the output could not say whether their images are saved (${r.unrecorded.reason}); \`nightshift report\` rebuilds them once it can`
            : '',
        ].filter(Boolean);
        process.stdout.write(
          `cancelled ${r.cancelled} jobs of batch ${String(o.batch)}${notes.length ? `; ${notes.join('; ')}` : ''}\n`,
        );
      });
    });

  common(program.command('retry').description('put failed jobs back'))
    .option('--batch <name>', 'only this batch')
    .option('--class <class>', 'only failures of this error class (transient, timeout, budget, …)')
    .option('--max-credits <n>', "raise the batch's budget to at least N first (never lowers it)")
    .action(async (o: Record<string, unknown>) => {
      if (o.maxCredits !== undefined && o.batch === undefined) throw new UsageError('--max-credits needs --batch');
      // Checked before connecting: a mistyped flag is a usage error whether or not Redis is up, and a
      // class no failure can have would put nothing back without a word.
      if (o.batch !== undefined) checkName(String(o.batch), '--batch', 'batch');
      const errorClass =
        o.class === undefined ? undefined : parseChoice(RECORD_ERROR_CLASSES)(String(o.class), '--class');
      const credits =
        o.maxCredits === undefined ? undefined : parseDecimal(String(o.maxCredits), '--max-credits', { min: 0 });
      await withContext(o, async (ctx, config) => {
        if (credits !== undefined) {
          const budget = await ctx.ledger.raiseBudget(String(o.batch), credits);
          process.stdout.write(`budget of batch ${String(o.batch)}: ${budget} credits\n`);
        }
        const n = await retryFailed(ctx, config, {
          batch: o.batch as string | undefined,
          errorClass,
        });
        process.stdout.write(`${n} failed jobs put back\n`);
      });
    });
}
