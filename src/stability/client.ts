/**
 * The Stability API client: one request per call, no retries (the queue owns retry policy),
 * every failure a classed ApiError. Bodies are read with a cap, and no text from an answer leaves
 * the client with a secret in it, whatever the server echoed.
 *
 * Abort behaviour: when the CALLER's signal aborts (shutdown), generate/getBalance/listEngines
 * reject with ApiError { errorClass: 'timeout', apiName: 'aborted', maybeBilled: true }
 * (maybeBilled false if the signal was already aborted before anything was sent). Callers tell
 * it apart from a real timeout (apiName 'request_timeout') by apiName or by their own signal.
 */
import { Pool, type Dispatcher } from 'undici';
import { ApiError } from '../errors.js';
import { MODELS } from '../models.js';
import { createRedactor, type Redact } from '../secrets.js';
import { createLargeBodyTurn, readBounded } from './body.js';
import { classifyHttpError, classifyTransportError, header, malformedResponse, responseTooLarge } from './classify.js';
import { parseV1Success, parseV2Success } from './parse.js';
import { buildV1Body, buildV2Form } from './request.js';
import type { GenerateRequest, GenerateResult, HeaderMap } from './types.js';

export interface StabilityClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Use this dispatcher instead of a Pool of our own (tests, proxies); it is not closed by close(). */
  dispatcher?: Dispatcher;
  /** Whole-request budget: connect, headers and body. */
  requestTimeoutMs: number;
  /** v2beta Accept mode: raw image bytes (default) or JSON with base64. */
  accept?: 'image' | 'json';
  clientId?: string;
  /**
   * Largest response body read, in bytes (default 64 MiB). A longer answer is a transient
   * `response_too_large`: the connection is dropped at the limit and the rest never buffered.
   */
  maxResponseBytes?: number;
  /**
   * Other secrets to keep out of every error (a Redis password, a webhook token); the API key
   * is always included.
   */
  secrets?: readonly string[];
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Enough of an error body to classify and quote it; the rest is dropped unread. */
const ERROR_BODY_BYTES = 64 * 1024;
/** Images are a few MB; bodies past this read one at a time (see LargeBodyTurn). */
const LARGE_BODY_BYTES = 16 * 1024 * 1024;

export interface StabilityClient {
  generate(req: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult>;
  getBalance(signal?: AbortSignal): Promise<number>;
  listEngines(signal?: AbortSignal): Promise<string[]>;
  close(): Promise<void>;
}

/** Room for ~128 concurrent generations plus balance checks and probes without queueing in the pool. */
const POOL_CONNECTIONS = 160;

interface RawResponse {
  status: number;
  headers: HeaderMap;
  body: Buffer;
}

type CallSpec = Pick<Dispatcher.RequestOptions, 'method' | 'path' | 'body'> & { headers: Record<string, string> };

export function createStabilityClient(opts: StabilityClientOptions): StabilityClient {
  const url = new URL(opts.baseUrl);
  const origin = url.origin;
  const prefix = url.pathname.replace(/\/+$/, '');
  const timeoutMs = opts.requestTimeoutMs;
  const owned = opts.dispatcher === undefined;
  const dispatcher: Dispatcher =
    opts.dispatcher ??
    new Pool(origin, {
      connections: POOL_CONNECTIONS,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: Math.min(timeoutMs, 10_000) },
    });
  const baseHeaders: Record<string, string> = {
    authorization: `Bearer ${opts.apiKey}`,
    'user-agent': 'nightshift/0.1',
  };
  if (opts.clientId) baseHeaders['stability-client-id'] = opts.clientId;

  const redact = createRedactor([opts.apiKey, ...(opts.secrets ?? [])]);
  const maxBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const turn = createLargeBodyTurn(LARGE_BODY_BYTES);

  async function call(spec: CallSpec, callerSignal?: AbortSignal): Promise<RawResponse> {
    if (callerSignal?.aborted) {
      throw new ApiError({
        errorClass: 'timeout',
        status: null,
        apiName: 'aborted',
        maybeBilled: false,
        cause: callerSignal.reason,
        message: 'Stability API request aborted by the caller before it was sent',
      });
    }
    // Our own controller rather than AbortSignal.timeout/any: the timer is cleared when the call ends
    // and no listener outlives the call on a long-lived caller signal.
    const ac = new AbortController();
    let abortedBy: 'timeout' | 'caller' | undefined;
    const timer = setTimeout(() => {
      abortedBy ??= 'timeout';
      ac.abort(new Error('request timeout'));
    }, timeoutMs);
    const onCallerAbort = (): void => {
      abortedBy ??= 'caller';
      ac.abort(callerSignal?.reason);
    };
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    try {
      const res = await dispatcher.request({
        origin,
        method: spec.method,
        path: prefix + spec.path,
        headers: { ...baseHeaders, ...spec.headers },
        body: spec.body ?? null,
        signal: ac.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const headers = res.headers as HeaderMap;
      const ok = res.statusCode === 200;
      const body = await readBounded(res.body, ok ? maxBytes : ERROR_BODY_BYTES, {
        declaredLength: header(headers, 'content-length'),
        whole: ok,
        turn,
        signal: ac.signal,
      });
      if (ok && !body.complete) throw responseTooLarge(res.statusCode, maxBytes);
      return { status: res.statusCode, headers, body: body.bytes };
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw classifyTransportError(err, { abortedBy, timeoutMs, redact });
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  async function callOk(spec: CallSpec, signal?: AbortSignal): Promise<RawResponse> {
    const res = await call(spec, signal);
    if (res.status !== 200) throw classifyHttpError(res.status, res.headers, res.body.toString('utf8'), { redact });
    return res;
  }

  function parseJsonBody(res: RawResponse): unknown {
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch {
      throw malformedResponse(`body is not JSON: ${res.body.subarray(0, 4096).toString('utf8')}`, redact);
    }
  }

  async function generate(req: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    const info = MODELS[req.model];
    if (info.family === 'v1') {
      const res = await callOk(
        {
          method: 'POST',
          path: info.path,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(buildV1Body(req)),
        },
        signal,
      );
      return parseV1Success(res.headers, res.body, { seed: req.seed, format: 'png', seedMax: info.seedMax, redact });
    }
    const accept = opts.accept === 'json' ? 'application/json' : 'image/*';
    const res = await callOk({ method: 'POST', path: info.path, headers: { accept }, body: buildV2Form(req) }, signal);
    return parseV2Success(res.headers, res.body, {
      seed: req.seed,
      format: req.params.output_format,
      seedMax: info.seedMax,
      redact,
    });
  }

  async function getBalance(signal?: AbortSignal): Promise<number> {
    const res = await callOk(
      { method: 'GET', path: '/v1/user/balance', headers: { accept: 'application/json' } },
      signal,
    );
    const json = parseJsonBody(res) as { credits?: unknown } | null;
    if (typeof json?.credits !== 'number' || !Number.isFinite(json.credits))
      throw malformedResponse('balance without a numeric credits field', redact);
    return json.credits;
  }

  async function listEngines(signal?: AbortSignal): Promise<string[]> {
    const res = await callOk(
      { method: 'GET', path: '/v1/engines/list', headers: { accept: 'application/json' } },
      signal,
    );
    const json = parseJsonBody(res);
    if (!Array.isArray(json)) throw malformedResponse('engine list is not an array', redact);
    return json.flatMap((e: unknown) =>
      typeof e === 'object' && e !== null && typeof (e as { id?: unknown }).id === 'string'
        ? [(e as { id: string }).id]
        : [],
    );
  }

  const guard =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        throw redactError(err, redact);
      }
    };

  return {
    generate: guard(generate),
    getBalance: guard(getBalance),
    listEngines: guard(listEngines),
    async close() {
      // A dispatcher passed in belongs to the caller. Abort in-flight requests before closing.
      if (owned) await dispatcher.close();
    },
  };
}

/**
 * Defence in depth: errors are built clean from redacted texts, but whatever escapes the client
 * (a transport error's message, say) is checked once more, stack included.
 */
function redactError(err: unknown, redact: Redact): unknown {
  if (!(err instanceof Error)) return err;
  if (err instanceof ApiError) {
    const apiName = redact(err.apiName);
    const message = redact(err.message);
    if (apiName === err.apiName && message === err.message) return err;
    // The cause is dropped too: it may quote what the server sent.
    return new ApiError({
      errorClass: err.errorClass,
      status: err.status,
      apiName,
      message,
      retryAfterMs: err.retryAfterMs,
      retryAfterCapped: err.retryAfterCapped,
      maybeBilled: err.maybeBilled,
    });
  }
  err.message = redact(err.message);
  if (err.stack) err.stack = redact(err.stack);
  return err;
}
