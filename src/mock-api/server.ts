/**
 * A fake Stability API over real HTTP: the same endpoints, validation, error bodies, rate limit
 * and billing rules as the reference describes, with deterministic placeholder images and
 * injectable faults. Used by `run --mock`, `nightshift mock-api` and the tests.
 */
import { createHash, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readBody } from './read-body.js';
import type { AddressInfo } from 'node:net';
import { creditsPerImage, type ModelId } from '../models.js';
import { errorReply, withId, MSG, type Family } from './bodies.js';
import { answerHostile, isHostile, statusFaultReply } from './hostile.js';
import { placeholderImage } from './placeholder.js';
import { createRateLimiter } from './rate-limit.js';
import { sendError, sendGeneration, sendJson, sendMalformed } from './respond.js';
import { clearStats, createStats, trackRequest } from './stats.js';
import type { Fault, FaultContext, FaultFn, MockApi, MockApiOptions } from './types.js';
import { V1_ENGINES, validateV1, validateV2, type GenCall, type Validation } from './validate.js';

export type { MockApi, MockApiOptions } from './types.js';

const DEFAULT_BALANCE = 1_000_000;
const V2_ROUTE = /^\/v2beta\/stable-image\/generate\/(core|ultra|sd3)$/;
const V1_ROUTE = /^\/v1\/generation\/([^/]+)\/text-to-image$/;

/** A number in [0, 1) from a string, stable across runs and processes. */
function unit(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;
}

function bearer(h: string | undefined): string | undefined {
  const key = h?.replace(/^Bearer\s+/i, '').trim();
  return key ? key : undefined;
}

export async function startMockApi(opts: MockApiOptions = {}): Promise<MockApi> {
  const now = opts.now ?? Date.now;
  const stats = createStats();
  const limiter = opts.rateLimit ? createRateLimiter(opts.rateLimit) : undefined;
  const attempts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let fault: FaultFn | undefined = opts.fault;
  let balance = opts.balance ?? DEFAULT_BALANCE;
  let closed = false;
  const engines: readonly string[] = opts.engines ?? V1_ENGINES;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (ms <= 0) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  function latency(call: GenCall): number {
    const l = opts.latencyMs;
    if (l === undefined) return 0;
    if (typeof l === 'number') return l;
    return l[0] + Math.floor(unit(`${call.model}\0${call.prompt}\0${call.seed}`) * (l[1] - l[0] + 1));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record = trackRequest(stats, { req, res, now });
    const arrival = record.arrival;
    const path = new URL(req.url ?? '/', 'http://mock').pathname;
    const family: Family = path.startsWith('/v2') ? 'v2' : 'v1';
    const key = bearer(req.headers.authorization);

    if (limiter && opts.rateLimit) {
      const d = limiter.check(key ?? '', arrival);
      if (!d.ok) {
        stats.rateLimited++;
        const { count, windowMs, lockoutMs } = opts.rateLimit;
        const reply = withId(
          errorReply(family, 429, 'rate_limit_exceeded', MSG.rateLimit(count, windowMs, lockoutMs)),
          'rate_limit_exceeded',
        );
        if (opts.rateLimit.retryAfter) reply.headers = { 'retry-after': String(Math.ceil(d.retryAfterMs / 1000)) };
        return sendError(res, reply);
      }
    }

    const v2 = req.method === 'POST' ? V2_ROUTE.exec(path) : null;
    const v1 = req.method === 'POST' ? V1_ROUTE.exec(path) : null;
    const isBalance = req.method === 'GET' && path === '/v1/user/balance';
    const isEngines = req.method === 'GET' && path === '/v1/engines/list';
    if (!v2 && !v1 && !isBalance && !isEngines) {
      return sendError(res, errorReply(family, 404, 'not_found', `${req.method} ${path} not found`));
    }
    if (v1 && !engines.includes(v1[1]!)) {
      return sendError(res, errorReply('v1', 404, 'not_found', MSG.engineNotFound(v1[1]!)));
    }

    let call: GenCall | undefined;
    if (v1 || v2) {
      const body = await readBody(req);
      if (body === 'too-large') return sendError(res, errorReply(family, 413, 'payload_too_large', MSG.tooLarge));
      const ctype = req.headers['content-type'];
      const accept = req.headers.accept;
      // Validation comes before authentication, as the real API's does: bad parameters with a bad key get 400, not 401.
      const checked: Validation = v2
        ? await validateV2(v2[1] as 'core' | 'ultra' | 'sd3', ctype, accept, body)
        : validateV1(v1![1] as ModelId, ctype, accept, body);
      if (!checked.ok) return sendError(res, checked.reply);
      call = checked.call;
    }

    if (!key) return sendError(res, errorReply(family, 401, 'unauthorized', MSG.missingAuth));
    if (opts.apiKey !== undefined && key !== opts.apiKey)
      return sendError(res, errorReply(family, 401, 'unauthorized', MSG.badKey));

    const ctx: FaultContext = {
      model: call?.model ?? '',
      prompt: call?.prompt ?? '',
      seed: call?.seed ?? 0,
      attempt: 0,
      path,
    };
    const id = `${ctx.model}|${ctx.prompt}|${ctx.seed}`;
    if (call) record.generation = id;
    ctx.attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, ctx.attempt);
    const f: Fault | undefined = fault?.(ctx, { key: key ?? '' });
    if (f && 'kind' in f) {
      if (f.kind === 'hang') return; // the socket is destroyed by close()
      if (f.kind === 'reset') {
        req.socket.resetAndDestroy();
        return;
      }
      if (f.kind === 'delay') await sleep(f.ms);
    }
    if (call) await sleep(latency(call));
    if (closed) return;
    if (f && !('kind' in f)) return sendError(res, statusFaultReply(family, f));
    const authorization = req.headers.authorization ?? '';
    if (isHostile(f) && (await answerHostile(res, f, { family, call, authorization }))) return;

    if (!call) {
      if (isBalance) return sendJson(res, 200, { credits: balance });
      return sendJson(
        res,
        200,
        engines.map((e) => ({ id: e, name: e, description: `mock ${e}`, type: 'PICTURE' })),
      );
    }

    if (opts.failRate && unit(`${call.prompt}\0${call.seed}\0${ctx.attempt}`) < opts.failRate) {
      return sendError(
        res,
        errorReply(family, 500, family === 'v1' ? 'server_error' : 'internal_error', MSG.serverError),
      );
    }
    if (f && 'kind' in f && f.kind === 'malformed') return sendMalformed(res, call);
    if (call.texts.some((t) => /\bforbidden\b/i.test(t))) {
      return sendError(
        res,
        family === 'v2'
          ? errorReply('v2', 403, 'content_moderation', MSG.moderationV2)
          : errorReply('v1', 400, 'invalid_prompts', MSG.moderationV1),
      );
    }
    const errorFinish = f && 'kind' in f && f.kind === 'error-finish';
    const price = errorFinish ? 0 : creditsPerImage(call.model, { steps: call.steps }) * call.samples;
    if (price > balance) {
      return sendError(
        res,
        errorReply(family, 402, 'payment_required', family === 'v2' ? MSG.paymentV2 : MSG.paymentV1),
      );
    }

    const seed = call.seed === 0 ? randomInt(1, 4294967295) : call.seed;
    const seeds = Array.from({ length: call.samples }, (_, i) => (seed + i) % 4294967296);
    const images = seeds.map((s) =>
      placeholderImage({
        model: call.model,
        prompt: call.prompt,
        seed: s,
        format: call.format,
        padTo: opts.imageBytes,
      }),
    );
    const filtered = (f && 'kind' in f && f.kind === 'filtered') || /blur-me/i.test(call.prompt);
    const finish = errorFinish ? 'ERROR' : filtered ? 'CONTENT_FILTERED' : 'SUCCESS';
    if (!errorFinish) {
      // Billed: SUCCESS and CONTENT_FILTERED; failed generations cost nothing.
      balance = Math.round((balance - price) * 1e6) / 1e6;
      stats.billedCredits = Math.round((stats.billedCredits + price) * 1e6) / 1e6;
      stats.generations.set(id, (stats.generations.get(id) ?? 0) + 1);
      record.billed = true;
    }
    const rawSeed = f && 'kind' in f && f.kind === 'bad-seed' ? f.value : undefined;
    sendGeneration(res, call, { images, seeds, finish, rawSeed });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'mock API handler failed');
      if (!res.headersSent && !res.destroyed) sendError(res, errorReply('v2', 500, 'internal_error', MSG.serverError));
    });
    if (opts.logger) {
      const t0 = Date.now();
      res.on('finish', () =>
        opts.logger?.debug(
          { method: req.method, path: req.url, status: res.statusCode, ms: Date.now() - t0 },
          'mock API request',
        ),
      );
    }
  });
  server.on('connection', (socket) => {
    stats.openSockets++;
    socket.on('close', () => stats.openSockets--);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  // Clients keep connections alive for a burst of work; don't drop them between requests.
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  opts.logger?.info({ port: addr.port }, 'mock Stability API listening');

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    stats,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      // Hung and delayed requests would otherwise keep close() waiting forever.
      server.closeAllConnections();
      await done;
    },
    setFault(fn) {
      fault = fn;
    },
    setBalance(n) {
      balance = n;
    },
    reset() {
      clearStats(stats);
      attempts.clear();
      limiter?.reset();
      balance = opts.balance ?? DEFAULT_BALANCE;
      fault = opts.fault;
    },
  };
}
