/**
 * The Stability API client: one request per call, no retries (the queue owns retry policy),
 * every failure an ApiError classified per SPEC §6.
 *
 * Abort behaviour: when the CALLER's signal aborts (shutdown), generate/getBalance/listEngines
 * reject with ApiError { errorClass: 'timeout', apiName: 'aborted', maybeBilled: true }
 * (maybeBilled false if the signal was already aborted before anything was sent). Callers tell
 * it apart from a real timeout (apiName 'request_timeout') by apiName or by their own signal.
 */
import { Pool, type Dispatcher } from 'undici';
import { ApiError } from '../errors.js';
import { MODELS } from '../models.js';
import { classifyHttpError, classifyTransportError, malformedResponse } from './classify.js';
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
}

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

  /** Defence in depth: no message leaves the client containing the key, whatever the server echoed. */
  function scrub(err: unknown): unknown {
    if (err instanceof Error && opts.apiKey.length >= 8 && err.message.includes(opts.apiKey)) {
      err.message = err.message.split(opts.apiKey).join('[redacted]');
    }
    return err;
  }

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
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers as HeaderMap, body };
    } catch (err) {
      throw classifyTransportError(err, abortedBy, timeoutMs);
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  async function callOk(spec: CallSpec, signal?: AbortSignal): Promise<RawResponse> {
    const res = await call(spec, signal);
    if (res.status !== 200) throw classifyHttpError(res.status, res.headers, res.body.toString('utf8'));
    return res;
  }

  function parseJsonBody(res: RawResponse): unknown {
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch {
      throw malformedResponse(`body is not JSON: ${res.body.subarray(0, 80).toString('utf8')}`);
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
      return parseV1Success(res.headers, res.body, req.seed);
    }
    const accept = opts.accept === 'json' ? 'application/json' : 'image/*';
    const res = await callOk({ method: 'POST', path: info.path, headers: { accept }, body: buildV2Form(req) }, signal);
    return parseV2Success(res.headers, res.body, req.seed);
  }

  async function getBalance(signal?: AbortSignal): Promise<number> {
    const res = await callOk(
      { method: 'GET', path: '/v1/user/balance', headers: { accept: 'application/json' } },
      signal,
    );
    const json = parseJsonBody(res) as { credits?: unknown } | null;
    if (typeof json?.credits !== 'number' || !Number.isFinite(json.credits))
      throw malformedResponse('balance without a numeric credits field');
    return json.credits;
  }

  async function listEngines(signal?: AbortSignal): Promise<string[]> {
    const res = await callOk(
      { method: 'GET', path: '/v1/engines/list', headers: { accept: 'application/json' } },
      signal,
    );
    const json = parseJsonBody(res);
    if (!Array.isArray(json)) throw malformedResponse('engine list is not an array');
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
        throw scrub(err);
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
