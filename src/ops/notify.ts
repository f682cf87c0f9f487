import type { Logger } from 'pino';
import { createRedactor, urlSecrets } from '../secrets.js';
import type { ReportSummary } from './report.js';

/**
 * `run --notify-url URL`: one POST of the batch's summary when `run` ends (finished, failed,
 * stopped or interrupted), for a chat webhook or a script. A failed notification is logged
 * and never changes the exit code: the images are on disk either way.
 */

export interface BatchNotice {
  batch: string;
  /** finished: every job succeeded or was filtered; failed: some failed; stopped: 401/402/budget; interrupted: a signal. */
  status: 'finished' | 'failed' | 'stopped' | 'interrupted';
  exit_code: number;
  counts: { jobs: number; succeeded: number; filtered: number; failed: number };
  /** Failed jobs per error class. */
  by_class: Record<string, number>;
  credits: number;
  /** Wall time of the `run` command. */
  duration_ms: number;
  manifest: string;
  gallery: string;
}

export function statusOfExit(code: number): BatchNotice['status'] {
  return code === 0 ? 'finished' : code === 1 ? 'failed' : code === 130 ? 'interrupted' : 'stopped';
}

export interface NotifyDeps {
  logger: Pick<Logger, 'info' | 'warn'>;
  /** Whole request, in milliseconds. Default 10 000. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** POSTs the notice as JSON; true when the receiver answered 2xx. Never throws. */
export async function sendNotice(url: URL, notice: BatchNotice, deps: NotifyDeps): Promise<boolean> {
  const doFetch = deps.fetch ?? fetch;
  // The URL may carry a token (Slack-style webhooks): log only its origin, and keep the token out of
  // an error text that happens to quote the URL.
  const where = url.origin;
  const redact = createRedactor(urlSecrets(url));
  try {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'nightshift' },
      body: JSON.stringify(notice),
      signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
      redirect: 'error',
    });
    await res.arrayBuffer().catch(() => undefined); // drain, so the socket is freed
    if (!res.ok) {
      deps.logger.warn({ notify: where, status: res.status }, `notification to ${where} answered ${res.status}`);
      return false;
    }
    deps.logger.info({ notify: where }, `notified ${where}`);
    return true;
  } catch (err) {
    const e = err as Error;
    const why = e.name === 'TimeoutError' ? 'timed out' : ((e.cause as Error | undefined)?.message ?? e.message);
    deps.logger.warn({ notify: where }, `notification to ${where} failed: ${redact(why)}`);
    return false;
  }
}

/** The notice for a finished `run`, from its report. */
export function noticeFromReport(
  r: Pick<
    ReportSummary,
    'batch' | 'jobs' | 'succeeded' | 'filtered' | 'failed' | 'byClass' | 'credits' | 'manifest' | 'gallery'
  >,
  exitCode: number,
  durationMs: number,
): BatchNotice {
  return {
    batch: r.batch,
    status: statusOfExit(exitCode),
    exit_code: exitCode,
    counts: { jobs: r.jobs, succeeded: r.succeeded, filtered: r.filtered, failed: r.failed },
    by_class: r.byClass,
    credits: r.credits,
    duration_ms: durationMs,
    manifest: r.manifest,
    gallery: r.gallery,
  };
}
