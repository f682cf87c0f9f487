/**
 * Pure mapping from API answers and transport failures to ApiError (SPEC §6).
 * Nothing here sees the API key; the client scrubs messages as a second line of defence.
 */
import { ApiError } from '../errors.js';
import type { HeaderMap } from './types.js';

const MAX_MESSAGE = 300;

export function truncate(s: string, max = MAX_MESSAGE): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}… (${flat.length - max} more chars)` : flat;
}

export function header(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Retry-After as milliseconds from `now`: either delta-seconds or an HTTP-date.
 * Undefined when absent or unparseable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // Only accept real dates; Date.parse is lenient enough to read "12" as a year.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export interface ParsedErrorBody {
  id?: string;
  name?: string;
  message?: string;
}

/** Read either error shape: v1 `{id,name,message}` or v2beta `{id,name,errors[]}`. */
export function parseErrorBody(text: string): ParsedErrorBody {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text.trim() ? { message: truncate(text) } : {};
  }
  if (typeof json !== 'object' || json === null) return { message: truncate(text) };
  const o = json as Record<string, unknown>;
  const out: ParsedErrorBody = {};
  if (typeof o.id === 'string') out.id = o.id;
  if (typeof o.name === 'string') out.name = o.name;
  if (Array.isArray(o.errors) && o.errors.length > 0) out.message = truncate(o.errors.map(String).join('; '));
  else if (typeof o.message === 'string') out.message = truncate(o.message);
  return out;
}

function httpMessage(status: number, b: ParsedErrorBody, extra = ''): string {
  const id = b.id ? ` (id ${b.id})` : '';
  return `Stability API HTTP ${status} ${b.name ?? 'error'}: ${b.message ?? '(no message)'}${id}${extra}`;
}

/** A non-200 answer. `now` is only used for an HTTP-date Retry-After. */
export function classifyHttpError(status: number, headers: HeaderMap, body: string, now = Date.now()): ApiError {
  const b = parseErrorBody(body);
  const apiName = b.name ?? `http_${status}`;
  const base = { status, apiName, maybeBilled: false };
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'), now);
    const extra = retryAfterMs === undefined ? '' : `; retry after ${Math.ceil(retryAfterMs / 1000)} s`;
    return new ApiError({ ...base, errorClass: 'rate_limited', retryAfterMs, message: httpMessage(status, b, extra) });
  }
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

/** A 200 whose body we cannot use (bad JSON, no image, bad base64, empty). Failed generations are not billed. */
export function malformedResponse(detail: string, status = 200): ApiError {
  return new ApiError({
    errorClass: 'transient',
    status,
    apiName: 'malformed_response',
    message: `Stability API HTTP ${status}: malformed response: ${truncate(detail)}`,
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

/**
 * A request that got no usable HTTP answer.
 * `abortedBy`: 'timeout' when our request timer fired, 'caller' when the caller's signal did.
 */
export function classifyTransportError(err: unknown, abortedBy?: 'timeout' | 'caller', timeoutMs?: number): ApiError {
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
  const detail = truncate(err instanceof Error ? err.message : String(err), 200);
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
