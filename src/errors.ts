/**
 * Errors are values with a class. Every error nightshift raises on purpose is a
 * NightshiftError carrying a stable `code` and the process exit code it maps to
 * (2 usage or bad input, 3 environment, 4 stopped by the API, the balance or the budget).
 */

/** The error classes: each decides what happens to a job that met it (retry, wait, fail, pause). */
export const ERROR_CLASSES = [
  'rate_limited',
  'transient',
  'timeout',
  'storage',
  'invalid_request',
  'moderated',
  'auth',
  'payment',
  'budget',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** The classes a failed job's record may carry: the API's, and those nightshift gives itself. */
export const RECORD_ERROR_CLASSES = [...ERROR_CLASSES, 'cancelled', 'stalled', 'internal'] as const;

export class NightshiftError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad command-line usage (exit 2). */
export class UsageError extends NightshiftError {
  override name = 'UsageError';
  constructor(message: string) {
    super('NS_USAGE', message, 2);
  }
}

export interface PromptProblem {
  file: string;
  /** 1-based line (for CSV: the line the record starts on); 0 when the problem is the whole file. */
  line: number;
  field: string;
  message: string;
}

export function formatProblem(p: PromptProblem): string {
  return `${p.file}:${p.line}: ${p.field}: ${p.message}`;
}

/** One or more problems in prompt files; nothing was enqueued (exit 2). */
export class PromptFileError extends NightshiftError {
  override name = 'PromptFileError';
  readonly problems: PromptProblem[];
  constructor(problems: PromptProblem[]) {
    const shown = problems.slice(0, 50).map(formatProblem);
    if (problems.length > shown.length) shown.push(`… and ${problems.length - shown.length} more problems`);
    super('NS_PROMPT_FILE', shown.join('\n'), 2);
    this.problems = problems;
  }
}

/** The environment is not usable: Redis unreachable, key missing, API host unreachable (exit 3). */
export class EnvironmentError extends NightshiftError {
  override name = 'EnvironmentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NS_ENVIRONMENT', message, 3, options);
  }
}

/** Work stopped by the API (401/402), the balance or the budget (exit 4). */
export class StoppedError extends NightshiftError {
  override name = 'StoppedError';
  readonly reason: 'auth' | 'payment' | 'balance' | 'budget';
  constructor(reason: StoppedError['reason'], message: string) {
    super('NS_STOPPED', message, 4);
    this.reason = reason;
  }
}

export interface ApiErrorInit {
  errorClass: ErrorClass;
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  /** The API's own error name (`bad_request`, `content_moderation`, …) or a transport code. */
  apiName: string;
  message: string;
  /** Server-requested wait (Retry-After), in milliseconds. */
  retryAfterMs?: number | undefined;
  /** The server asked for a longer wait than is honoured; `retryAfterMs` is the cap. */
  retryAfterCapped?: boolean;
  /** True when the request may have reached the API and been billed (timeouts, lost connections). */
  maybeBilled?: boolean;
  cause?: unknown;
}

/** A failed call to the Stability API, with the class its answer (or its absence) falls in. Never contains the API key. */
export class ApiError extends NightshiftError {
  override name = 'ApiError';
  readonly errorClass: ErrorClass;
  readonly status: number | null;
  readonly apiName: string;
  readonly retryAfterMs: number | undefined;
  readonly retryAfterCapped: boolean;
  readonly maybeBilled: boolean;
  constructor(init: ApiErrorInit) {
    super(
      `NS_API_${init.errorClass.toUpperCase()}`,
      init.message,
      init.errorClass === 'auth' || init.errorClass === 'payment' ? 4 : 1,
      {
        cause: init.cause,
      },
    );
    this.errorClass = init.errorClass;
    this.status = init.status;
    this.apiName = init.apiName;
    this.retryAfterMs = init.retryAfterMs;
    this.retryAfterCapped = init.retryAfterCapped ?? false;
    this.maybeBilled = init.maybeBilled ?? false;
  }
}

/** A paid image could not be written to disk (full disk, permissions). */
export class StorageError extends NightshiftError {
  override name = 'StorageError';
  readonly errorClass = 'storage' as const;
  /** errno code (ENOSPC, EACCES, EROFS, …) */
  readonly fsCode: string;
  constructor(message: string, fsCode: string, options?: { cause?: unknown }) {
    super('NS_STORAGE', message, 1, options);
    this.fsCode = fsCode;
  }
}

/** The shape an error takes in the manifest and sidecars. */
export interface ErrorRecord {
  class: (typeof RECORD_ERROR_CLASSES)[number];
  status: number | null;
  name: string;
  message: string;
}

export function toErrorRecord(err: unknown): ErrorRecord {
  if (err instanceof ApiError) {
    return { class: err.errorClass, status: err.status, name: err.apiName, message: err.message };
  }
  if (err instanceof StorageError) {
    return { class: 'storage', status: null, name: err.fsCode, message: err.message };
  }
  if (err instanceof Error) return { class: 'internal', status: null, name: err.name, message: err.message };
  return { class: 'internal', status: null, name: 'Error', message: String(err) };
}
