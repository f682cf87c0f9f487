/**
 * Pure mapping from API answers and transport failures to classed ApiErrors.
 * Every text taken from an answer goes through `redact` before it is cut to length: the API may
 * echo the key anywhere (an error's name, id, message, or a non-JSON body).
 */
import { ApiError } from '../errors.js';
import type { Redact } from '../secrets.js';
import type { HeaderMap } from './types.js';

const MAX_MESSAGE = 300;
/** An error's `name` and `id` are short words; anything longer is cut. */
const MAX_WORD = 100;
/** Longest Retry-After honoured: a server asking for more (a year, say) gets this. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

const keep: Redact = (s) => s;

/**
 * A text from an answer, fit to store and show: secrets redacted first, then whitespace flattened and
 * the text cut to `max`. Only a bounded head of a huge text is looked at.
 */
export function excerpt(text: string, max: number, redact: Redact): string {
  const head = text.length > max * 4 + 64 ? text.slice(0, max * 4 + 64) : text;
  const flat = redact(head).replace(/\s+/g, ' ').trim();
  const more = flat.length - max + (text.length - head.length);
  return flat.length > max ? `${flat.slice(0, max)}… (${more} more chars)` : flat;
}

export function header(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export interface RetryAfter {
  ms: number;
  /** The server asked for more than MAX_RETRY_AFTER_MS; `ms` is the cap. */
  capped: boolean;
}

/**
 * Retry-After as milliseconds from `now`: either delta-seconds or an HTTP-date, capped at
 * MAX_RETRY_AFTER_MS (a huge value must neither overflow a timer nor lock a key out for years).
 * Undefined when absent or unparseable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): RetryAfter | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Math.round(Number(v) * 1000);
  else {
    // Only accept real dates; Date.parse is lenient enough to read "12" as a year.
    if (!/[a-z]/i.test(v)) return undefined;
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  // Infinity (hundreds of digits) and NaN count as "more than the cap".
  if (!(ms <= MAX_RETRY_AFTER_MS)) return { ms: MAX_RETRY_AFTER_MS, capped: true };
  return { ms, capped: false };
}

export interface ParsedErrorBody {
  id?: string;
  name?: string;
  message?: string;
}

function errorEntryText(entry: unknown): string {
  if (typeof entry === 'string') return entry;
  if (typeof entry === 'object' && entry !== null && typeof (entry as { message?: unknown }).message === 'string') {
    return (entry as { message: string }).message;
  }
  // Bounded: the whole message is cut to its limit after the entries are joined.
  return JSON.stringify(entry)?.slice(0, 1000) ?? String(entry);
}

/**
 * Read either error shape: v1 `{id,name,message}` or v2beta `{id,name,errors[]}`; anything else is
 * kept as a message. Fields are redacted after JSON decoding, so an escaped echo is caught too.
 */
export function parseErrorBody(text: string, redact: Redact = keep): ParsedErrorBody {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text.trim() ? { message: excerpt(text, MAX_MESSAGE, redact) } : {};
  }
  if (typeof json !== 'object' || json === null) return { message: excerpt(text, MAX_MESSAGE, redact) };
  const o = json as Record<string, unknown>;
  const out: ParsedErrorBody = {};
  if (typeof o.id === 'string' && o.id.trim()) out.id = excerpt(o.id, MAX_WORD, redact);
  if (typeof o.name === 'string' && o.name.trim()) out.name = excerpt(o.name, MAX_WORD, redact);
  // An entry may be a string or an object of its own ({message}, or anything): never "[object Object]".
  const errors = Array.isArray(o.errors) ? o.errors.slice(0, 50).map(errorEntryText).join('; ') : '';
  if (errors) out.message = excerpt(errors, MAX_MESSAGE, redact);
  else if (typeof o.message === 'string') out.message = excerpt(o.message, MAX_MESSAGE, redact);
  return out;
}

function httpMessage(status: number, b: ParsedErrorBody, extra = ''): string {
  const id = b.id ? ` (id ${b.id})` : '';
  return `Stability API HTTP ${status} ${b.name ?? 'error'}: ${b.message ?? '(no message)'}${id}${extra}`;
}

export interface ClassifyOptions {
  /** Only used for an HTTP-date Retry-After; defaults to Date.now(). */
  now?: number;
  /** Applied to every text taken from the body, before it is cut to length. */
  redact?: Redact;
}

function rateLimited(status: number, headers: HeaderMap, b: ParsedErrorBody, now: number): ApiError {
  const retry = parseRetryAfter(header(headers, 'retry-after'), now);
  let extra = '';
  if (retry)
    extra = `; retry after ${Math.ceil(retry.ms / 1000)} s${retry.capped ? ' (the server asked for more: capped)' : ''}`;
  return new ApiError({
    status,
    apiName: b.name ?? `http_${status}`,
    errorClass: 'rate_limited',
    retryAfterMs: retry?.ms,
    retryAfterCapped: retry?.capped ?? false,
    message: httpMessage(status, b, extra),
  });
}

/** A non-200 answer. */
export function classifyHttpError(
  status: number,
  headers: HeaderMap,
  body: string,
  opts: ClassifyOptions = {},
): ApiError {
  const b = parseErrorBody(body, opts.redact);
  if (status === 429) return rateLimited(status, headers, b, opts.now ?? Date.now());
  const apiName = b.name ?? `http_${status}`;
  const base = { status, apiName, maybeBilled: false };
  const message = httpMessage(status, b);
  if (status >= 500) return new ApiError({ ...base, errorClass: 'transient', message });
  if (status === 401) return new ApiError({ ...base, errorClass: 'auth', message });
  if (status === 402) return new ApiError({ ...base, errorClass: 'payment', message });
  if (status === 403 && b.name === 'content_moderation')
    return new ApiError({ ...base, errorClass: 'moderated', message });
  if (status === 400 && b.name === 'invalid_prompts')
    return new ApiError({ ...base, errorClass: 'moderated', message });
  // 408: the server gave up waiting for our request, so it never ran.
  if (status === 408) return new ApiError({ ...base, errorClass: 'transient', message });
  if (status >= 400) return new ApiError({ ...base, errorClass: 'invalid_request', message });
  // 1xx/2xx/3xx other than 200: not an answer we can use, and nothing was generated for us.
  return new ApiError({ ...base, errorClass: 'transient', apiName: 'unexpected_status', message });
}

/**
 * A 200 whose body we cannot use (bad JSON, no image, bad base64, not the image type it claims).
 * Failed generations are not billed. `detail` may quote the body, so it is redacted.
 */
export function malformedResponse(detail: string, redact: Redact): ApiError {
  return new ApiError({
    errorClass: 'transient',
    status: 200,
    apiName: 'malformed_response',
    message: `Stability API HTTP 200: malformed response: ${excerpt(detail, MAX_MESSAGE, redact)}`,
  });
}

/** A body over the client's limit: not read past it, and not an answer we can use. */
export function responseTooLarge(status: number, limit: number): ApiError {
  return new ApiError({
    errorClass: 'transient',
    status,
    apiName: 'response_too_large',
    message: `Stability API HTTP ${status}: response body over ${limit} bytes; not read further`,
  });
}

/** Failures before the request left this machine: it cannot have been billed. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** The first error code found on the error, its causes, or an AggregateError's members. */
export function errorCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 4) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const c = errorCode(inner, depth + 1);
      if (c) return c;
    }
  }
  return errorCode(e.cause, depth + 1);
}

export interface TransportContext {
  /** 'timeout' when our request timer fired, 'caller' when the caller's signal did. */
  abortedBy?: 'timeout' | 'caller' | undefined;
  timeoutMs?: number;
  redact?: Redact;
}

/** A request that got no usable HTTP answer. */
export function classifyTransportError(err: unknown, ctx: TransportContext = {}): ApiError {
  const { abortedBy, timeoutMs } = ctx;
  const code = errorCode(err);
  if (abortedBy === 'caller') {
    return new ApiError({
      errorClass: 'timeout',
      status: null,
      apiName: 'aborted',
      maybeBilled: true,
      cause: err,
      message: 'Stability API request aborted by the caller (shutdown); it may have been billed',
    });
  }
  if (abortedBy === 'timeout' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    const after = timeoutMs === undefined ? '' : ` after ${timeoutMs} ms`;
    return new ApiError({
      errorClass: 'timeout',
      status: null,
      apiName: 'request_timeout',
      maybeBilled: true,
      cause: err,
      message: `Stability API request timed out${after} (${code ?? 'timer'}); it may have been billed`,
    });
  }
  const detail = excerpt(err instanceof Error ? err.message : String(err), 200, ctx.redact ?? keep);
  if (code !== undefined && NOT_SENT.has(code)) {
    return new ApiError({
      errorClass: 'transient',
      status: null,
      apiName: code,
      maybeBilled: false,
      cause: err,
      message: `Stability API unreachable (${code}): ${detail}`,
    });
  }
  // Reset or closed after connecting (ECONNRESET, UND_ERR_SOCKET, EPIPE, parser errors, unknown):
  // the API may have received and billed the request, so it counts as a timeout.
  return new ApiError({
    errorClass: 'timeout',
    status: null,
    apiName: code ?? 'network_error',
    maybeBilled: true,
    cause: err,
    message: `Stability API connection lost (${code ?? 'unknown'}): ${detail}; it may have been billed`,
  });
}
