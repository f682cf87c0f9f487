import { join } from 'node:path';
import type { Command } from 'commander';
import { checkApiTransport, loadConfig, loadEnqueueConfig, loadWorkerConfig, settingsOf } from '../../config.js';
import { createLogger } from '../../logger.js';
import { openApiTarget } from '../../stability/target.js';
import { startWorker } from '../../../workers/runtime.js';
import { defaultBatchName, formatSummary } from '../../queue/enqueue.js';
import { buildReport, reportNotes } from '../../ops/report.js';
import { openOutput } from '../../output/storage/open.js';
import { batchDir } from '../../output/paths.js';
import { checkBatchFolder, openLogFileSafely, openUserLogFile } from '../../output/safe-dirs.js';
import { common, generation, withSettings, worker } from '../options.js';
import { openQueueContext, resolveRunRedis } from '../../ops/context.js';
import { batchFinishedCheck } from '../../ops/batch-finished.js';
import { runEnqueue } from './enqueue.js';
import { CLOSE_MS, onStopSignals } from '../signals.js';
import { settleWithin, within } from '../../timeouts.js';
import { createProgress } from '../progress.js';
import { noticeFromReport, sendNotice } from '../../ops/notify.js';
import { estimateBatch, formatEstimate, windowState, type WindowState } from '../../queue/window.js';

export function runCommand(program: Command): void {
  const cmd = program
    .command('run')
    .description('enqueue prompt files, work until that batch is finished, write its manifest and gallery')
    .argument('<file...>', 'prompt files (.txt, .jsonl, .csv)');
  withSettings(worker(generation(common(cmd))), ['notifyUrl', 'exitAtWindowEnd']).action(
    async (files: string[], o: Record<string, unknown>) => {
      process.exitCode = await run(files, o);
    },
  );
}

async function run(files: string[], o: Record<string, unknown>): Promise<number> {
  const config = loadConfig(o);
  const wc = loadWorkerConfig(o);
  const e = loadEnqueueConfig(o);
  const settings = settingsOf(o);
  const batch = e.batch ?? defaultBatchName(files[0] ?? 'batch');
  const ref = { api: config.api.identity, batch };
  const notifyUrl = settings('notifyUrl') ?? null;
  const startedAt = Date.now();
  const stream = e.json ? process.stderr : process.stdout;
  const console = createLogger({ level: config.logLevel, stream, secrets: config.secrets });
  const insecure = checkApiTransport(config);
  if (insecure) console.warn(insecure);
  if (e.dryRun) {
    const summary = await runEnqueue(files, o, { config, logger: console, redisUrl: '' });
    process.stdout.write(e.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
    return 0;
  }
  // What would stop the run once jobs are queued is judged before any is: the log file the user
  // named, and a link planted in the batch folder (images/, run.log, …).
  const userLog = wc.logFile ? [{ fd: openUserLogFile(wc.logFile) }] : [];
  await checkBatchFolder({ out: config.out, dir: batchDir(config.out, ref) });
  const redis = await resolveRunRedis(config, console);
  try {
    const summary = await runEnqueue(files, { ...o, batch }, { config, logger: console, redisUrl: redis.url });
    // With --json, stdout carries one JSON object at the end (what was added and how the run ended);
    // the lines for people go to stderr.
    const say = (text: string) => void (e.json ? process.stderr : process.stdout).write(text);
    if (!e.json) say(`${formatSummary(summary)}\n`);
    const logger = createLogger({
      level: config.logLevel,
      stream,
      secrets: config.secrets,
      files: [{ fd: openLogFileSafely(join(batchDir(config.out, ref), 'run.log'), config.out) }, ...userLog],
    });
    const target = await openApiTarget(config, {
      requestTimeoutMs: wc.requestTimeoutMs,
      maxResponseBytes: wc.maxResponseBytes,
      logger,
    });
    const exitAtWindowEnd = settings('exitAtWindowEnd');
    let windowWasOpen = false;
    let windowEnded: WindowState | null = null;
    const handle = await startWorker({
      config,
      wc,
      redisUrl: redis.url,
      logger,
      client: target.client,
      apiKey: target.apiKey,
      onWindow: (w) => {
        if (w.open) windowWasOpen = true;
        else if (windowWasOpen && exitAtWindowEnd) windowEnded = w;
      },
    });
    const ctx = await openQueueContext(config, redis.url);
    const pending = (await ctx.state.counts(batch)).pending;
    const estimate = estimateBatch({ jobs: pending, rate: wc.rate, window: wc.window, now: new Date() });
    const open = wc.window === null || windowState(wc.window, new Date()).open;
    // Nothing left to send (a rerun): no estimate to give.
    if (pending > 0) say(`${formatEstimate(estimate, open)}\n`);
    let interrupted = false;
    let killed = false;
    const off = onStopSignals(
      logger,
      () => {
        interrupted = true;
        void handle.stop(130);
      },
      () => {
        killed = true;
        handle.kill(130);
      },
    );
    const progress = createProgress({
      batch,
      tty: process.stderr.isTTY === true,
      write: (s) => process.stderr.write(s),
      intervalMs: settings('progressInterval'),
    });
    let stoppedCode: number | null = null;
    void handle.done.then((code) => (stoppedCode = code));
    // Work until this batch has no pending job and none of its jobs waits, runs or is delayed on this
    // queue (other batches' jobs are worked too, but not waited for).
    const finished = batchFinishedCheck(ctx, batch);
    for (;;) {
      if (stoppedCode !== null || windowEnded !== null) break;
      // The last few jobs are watched closely, so the run ends soon after the last answer.
      let pollMs = 250;
      try {
        const counts = await ctx.state.counts(batch);
        const ledger = await ctx.ledger.get(batch);
        progress.update({ counts, credits: ledger.billed, at: Date.now() });
        if (await finished(counts)) break;
        if (counts.pending <= 1) pollMs = 50;
      } catch {
        // Redis away for a moment: the worker reconnects; keep waiting.
      }
      await within(handle.done, pollMs, undefined);
    }
    progress.end();
    // A second signal exits at once: no waiting for requests in flight, no report. The jobs
    // come back to the queue, and the next run finishes them and writes the report.
    if (killed) return 130;
    await handle.stop(interrupted ? 130 : 0);
    const workerCode = await handle.done;
    off();
    await settleWithin(target.close(), CLOSE_MS);
    const left = windowEnded || interrupted ? (await ctx.state.counts(batch)).pending : 0;
    // The batch's jobs, so the report can trust the manifest the workers appended (Redis away: rebuild).
    const jobs = await ctx.state.states(batch).then(
      (m) => [...m.keys()],
      () => undefined,
    );
    await ctx.close();
    const report = await buildReport(config.out, ref, { output: openOutput(config), ...(jobs ? { jobs } : {}) });
    if (windowEnded) {
      const next = (windowEnded as WindowState).changesAt;
      say(
        `the run window ${wc.window!.text} closed: ${left} job(s) of batch ${batch} left queued; ` +
          `they run in the next window (${next.toTimeString().slice(0, 5)}) with \`nightshift work\` or this same \`run\`\n`,
      );
    }
    if (interrupted && !windowEnded && left > 0) {
      // The counts below are what is on disk; without this line an interrupted batch reads as a small one.
      say(
        `interrupted: ${left} job(s) of batch ${batch} left queued; the same \`run\` (or \`nightshift work\`) finishes them\n`,
      );
    }
    const budgetHit = (report.byClass.budget ?? 0) > 0;
    say(
      `${report.succeeded} succeeded, ${report.filtered} filtered, ${report.failed} failed; ${report.credits} credits\n` +
        `images:   ${report.images}\nmanifest: ${report.manifest}\ngallery:  ${report.gallery}\n` +
        reportNotes(report)
          .map((n) => `${n}\n`)
          .join(''),
    );
    const code =
      workerCode === 130 || interrupted ? 130 : workerCode === 4 || budgetHit ? 4 : report.failed > 0 ? 1 : 0;
    if (e.json) {
      const result = {
        succeeded: report.succeeded,
        filtered: report.filtered,
        failed: report.failed,
        credits: report.credits,
        failed_by_class: report.byClass,
        left_queued: left,
        images: report.images,
        manifest: report.manifest,
        gallery: report.gallery,
        exit_code: code,
      };
      process.stdout.write(`${JSON.stringify({ ...summary, result })}\n`);
    }
    if (notifyUrl) await sendNotice(notifyUrl, noticeFromReport(report, code, Date.now() - startedAt), { logger });
    return code;
  } finally {
    await redis.private?.stop();
  }
}
