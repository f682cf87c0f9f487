import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool, request, Response } from 'undici';
import { ApiError } from '../src/errors.js';
import type { GenerationParams, ModelId } from '../src/models.js';
import { placeholderBytes } from './helpers/images.js';
import { startMockApi, type MockApi, type MockApiOptions } from '../src/mock-api/server.js';
import { classifyHttpError, classifyTransportError, parseRetryAfter } from '../src/stability/classify.js';
import { createStabilityClient, type StabilityClient, type StabilityClientOptions } from '../src/stability/client.js';
import type { GenerateRequest } from '../src/stability/types.js';

const KEY = 'sk-live-SECRET-abcdef0123456789';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  mockOpts: MockApiOptions = {},
  clientOpts: Partial<StabilityClientOptions> = {},
): Promise<{ mock: MockApi; client: StabilityClient }> {
  const mock = await startMockApi(mockOpts);
  cleanups.push(() => mock.close());
  const client = createStabilityClient({ baseUrl: mock.url, apiKey: KEY, requestTimeoutMs: 2000, ...clientOpts });
  cleanups.push(() => client.close());
  return { mock, client };
}

function req(
  model: ModelId,
  over: Partial<GenerateRequest> = {},
  params: Partial<GenerationParams> = {},
): GenerateRequest {
  const v1 = model.startsWith('stable-diffusion');
  const base: GenerationParams = v1
    ? { cfg_scale: 7, width: 1024, height: 1024, steps: 30, output_format: 'png' }
    : { aspect_ratio: '1:1', output_format: 'png', ...(model.startsWith('sd3') ? { cfg_scale: 4 } : {}) };
  return {
    model,
    prompt: 'A lighthouse on a cliff',
    negative_prompt: null,
    params: { ...base, ...params },
    seed: 1234,
    ...over,
  };
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  const e = err as ApiError;
  expect(e.message).not.toContain(KEY);
  return e;
}

/** A one-off HTTP server recording what the client sends. */
async function recorder(
  answer: (req: IncomingMessage, body: Buffer) => { status: number; headers: Record<string, string>; body: string },
) {
  const seen: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: Buffer }> = [];
  const server: Server = createServer((rq, rs) => {
    const chunks: Buffer[] = [];
    rq.on('data', (c: Buffer) => chunks.push(c));
    rq.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: rq.method, url: rq.url, headers: rq.headers, body });
      const a = answer(rq, body);
      rs.writeHead(a.status, a.headers).end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const PNG_B64 = placeholderBytes({ model: 'x', prompt: 'y', seed: 1, format: 'png' }).toString('base64');

describe('requests on the wire', () => {
  it('v1 sends exactly the original script request (plus seed and weight)', async () => {
    const rec = await recorder(() => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ artifacts: [{ base64: PNG_B64, seed: 1234, finishReason: 'SUCCESS' }] }),
    }));
    const client = createStabilityClient({ baseUrl: rec.url, apiKey: KEY, requestTimeoutMs: 2000 });
    cleanups.push(() => client.close());
    const r = await client.generate(req('stable-diffusion-v1-6'));
    expect(r).toMatchObject({ mime: 'image/png', seed: 1234, finishReason: 'SUCCESS' });
    const sent = rec.seen[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.url).toBe('/v1/generation/stable-diffusion-v1-6/text-to-image');
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.headers.accept).toBe('application/json');
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.parse(sent.body.toString())).toEqual({
      text_prompts: [{ text: 'A lighthouse on a cliff', weight: 1 }],
      cfg_scale: 7,
      height: 1024,
      width: 1024,
      samples: 1,
      steps: 30,
      seed: 1234,
    });
    await client.generate(req('stable-diffusion-xl-1024-v1-0', { negative_prompt: 'fog' }, { style_preset: 'anime' }));
    expect(JSON.parse(rec.seen[1]!.body.toString())).toMatchObject({
      text_prompts: [
        { text: 'A lighthouse on a cliff', weight: 1 },
        { text: 'fog', weight: -1 },
      ],
      style_preset: 'anime',
    });
  });
  it('v2beta sends multipart with the sd3 fields', async () => {
    const rec = await recorder(() => ({
      status: 200,
      headers: { 'content-type': 'image/png', 'finish-reason': 'SUCCESS', seed: '1234' },
      body: '',
    }));
    const client = createStabilityClient({
      baseUrl: rec.url,
      apiKey: KEY,
      requestTimeoutMs: 2000,
      clientId: 'nightshift',
    });
    cleanups.push(() => client.close());
    await apiError(client.generate(req('sd3.5-large-turbo', { negative_prompt: 'fog' }, { style_preset: 'anime' }))); // empty body
    const sent = rec.seen[0]!;
    expect(sent.url).toBe('/v2beta/stable-image/generate/sd3');
    expect(sent.headers.accept).toBe('image/*');
    expect(sent.headers['stability-client-id']).toBe('nightshift');
    const form = await new Response(sent.body, {
      headers: { 'content-type': sent.headers['content-type']! },
    }).formData();
    expect(Object.fromEntries([...form.entries()])).toEqual({
      prompt: 'A lighthouse on a cliff',
      negative_prompt: 'fog',
      seed: '1234',
      aspect_ratio: '1:1',
      style_preset: 'anime',
      output_format: 'png',
      model: 'sd3.5-large-turbo',
      mode: 'text-to-image',
      cfg_scale: '4',
    });
  });
});

describe('successful generations against the mock', () => {
  it.each(['image', 'json'] as const)('v2beta in %s mode, every format', async (accept) => {
    const { client } = await setup({}, { accept });
    for (const [fmt, mime] of [
      ['png', 'image/png'],
      ['jpeg', 'image/jpeg'],
      ['webp', 'image/webp'],
    ] as const) {
      const r = await client.generate(req('core', {}, { output_format: fmt }));
      expect(r).toMatchObject({
        mime,
        seed: 1234,
        finishReason: 'SUCCESS',
        requestId: expect.stringMatching(/^[0-9a-f]{32}$/),
      });
      expect(
        r.bytes.equals(placeholderBytes({ model: 'core', prompt: 'A lighthouse on a cliff', seed: 1234, format: fmt })),
      ).toBe(true);
    }
    const sd3 = await client.generate(req('sd3.5-medium'));
    expect(
      sd3.bytes.equals(
        placeholderBytes({ model: 'sd3.5-medium', prompt: 'A lighthouse on a cliff', seed: 1234, format: 'png' }),
      ),
    ).toBe(true);
  });
  it('v1 engines, random seeds, CONTENT_FILTERED, balance and engines', async () => {
    const { mock, client } = await setup({ balance: 100 });
    expect((await client.generate(req('stable-diffusion-xl-1024-v1-0'))).finishReason).toBe('SUCCESS');
    expect((await client.generate(req('stable-diffusion-v1-6', { seed: 0 }))).seed).toBeGreaterThan(0);
    const blurred = await client.generate(req('ultra', { prompt: 'blur-me please' }));
    expect(blurred.finishReason).toBe('CONTENT_FILTERED');
    expect(mock.stats.billedCredits).toBeCloseTo(9.8);
    expect(await client.getBalance()).toBeCloseTo(90.2);
    expect(await client.listEngines()).toEqual(['stable-diffusion-v1-6', 'stable-diffusion-xl-1024-v1-0']);
  });
});

describe('error classes', () => {
  it('401 → auth, and the key never shows', async () => {
    const { client } = await setup({ apiKey: 'sk-the-right-one' });
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({ errorClass: 'auth', status: 401, apiName: 'unauthorized', maybeBilled: false });
    expect((await apiError(client.getBalance())).errorClass).toBe('auth');
  });
  it('redacts the key even when the server echoes it', async () => {
    const { client } = await setup({ fault: () => ({ status: 400, message: `bad key ${KEY} given` }) });
    const e = await apiError(client.generate(req('core')));
    expect(e.message).toContain('bad key [redacted] given');
  });
  it('402 → payment (v2 and v1)', async () => {
    const { client } = await setup({ balance: 0 });
    expect(await apiError(client.generate(req('core')))).toMatchObject({
      errorClass: 'payment',
      status: 402,
      apiName: 'payment_required',
    });
    expect(await apiError(client.generate(req('stable-diffusion-v1-6')))).toMatchObject({
      errorClass: 'payment',
      status: 402,
    });
  });
  it('moderation: v2 403 content_moderation and v1 400 invalid_prompts; other 403 is invalid_request', async () => {
    const { client, mock } = await setup();
    const v2 = await apiError(client.generate(req('core', { prompt: 'a forbidden castle' })));
    expect(v2).toMatchObject({ errorClass: 'moderated', status: 403, apiName: 'content_moderation' });
    expect(v2.message).toMatch(/not charged.*\(id [0-9a-f]{32}\)/);
    const v1 = await apiError(client.generate(req('stable-diffusion-v1-6', { negative_prompt: 'forbidden' })));
    expect(v1).toMatchObject({ errorClass: 'moderated', status: 400, apiName: 'invalid_prompts' });
    mock.setFault(() => ({ status: 403, name: 'permission_denied' }));
    expect(await apiError(client.generate(req('core')))).toMatchObject({ errorClass: 'invalid_request', status: 403 });
  });
  it('400, 404, 413, 422 → invalid_request with the API message', async () => {
    const { client, mock } = await setup();
    const bad = await apiError(client.generate(req('stable-diffusion-xl-1024-v1-0', {}, { width: 512, height: 512 })));
    expect(bad).toMatchObject({ errorClass: 'invalid_request', status: 400, apiName: 'invalid_height_or_width' });
    expect(bad.message).toContain('1024x1024');
    const v2 = await apiError(client.generate(req('core', { prompt: '' })));
    expect(v2.message).toContain('prompt: is required');
    for (const [status, name] of [
      [404, 'not_found'],
      [413, 'payload_too_large'],
      [422, 'invalid_language'],
    ] as const) {
      mock.setFault(() => ({ status, name }));
      expect(await apiError(client.generate(req('core')))).toMatchObject({
        errorClass: 'invalid_request',
        status,
        apiName: name,
      });
    }
    // An unknown engine, as the mock answers it.
    const res = await request(`${mock.url}/v1/generation/stable-diffusion-v1-5/text-to-image`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body: '{}',
    });
    const e = classifyHttpError(res.statusCode, res.headers, await res.body.text());
    expect(e).toMatchObject({ errorClass: 'invalid_request', status: 404, apiName: 'not_found' });
    expect(e.message).toContain('The specified engine (ID stable-diffusion-v1-5) was not found.');
  });
  it('429 → rate_limited, with and without Retry-After', async () => {
    const { client } = await setup({ rateLimit: { count: 1, windowMs: 60_000, lockoutMs: 60_000 } });
    await client.getBalance();
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({
      errorClass: 'rate_limited',
      status: 429,
      apiName: 'rate_limit_exceeded',
      retryAfterMs: undefined,
    });
    const { client: c2 } = await setup({
      rateLimit: { count: 1, windowMs: 60_000, lockoutMs: 60_000, retryAfter: true },
    });
    await c2.getBalance();
    expect(await apiError(c2.generate(req('stable-diffusion-v1-6')))).toMatchObject({
      errorClass: 'rate_limited',
      retryAfterMs: 60_000,
    });
  });
  it('500 → transient, not billed', async () => {
    const { client, mock } = await setup({ failRate: 1 });
    expect(await apiError(client.generate(req('core')))).toMatchObject({
      errorClass: 'transient',
      status: 500,
      maybeBilled: false,
    });
    expect(await apiError(client.generate(req('stable-diffusion-v1-6')))).toMatchObject({
      errorClass: 'transient',
      apiName: 'server_error',
    });
    expect(mock.stats.billedCredits).toBe(0);
  });
  it.each(['image', 'json'] as const)('malformed 200 and ERROR finish → transient (%s mode)', async (accept) => {
    const { client, mock } = await setup({}, { accept });
    mock.setFault(() => ({ kind: 'malformed' }));
    for (const m of ['core', 'stable-diffusion-v1-6'] as const) {
      expect(await apiError(client.generate(req(m)))).toMatchObject({
        errorClass: 'transient',
        status: 200,
        apiName: 'malformed_response',
      });
    }
    mock.setFault(() => ({ kind: 'error-finish' }));
    for (const m of ['core', 'stable-diffusion-xl-1024-v1-0'] as const) {
      expect(await apiError(client.generate(req(m)))).toMatchObject({
        errorClass: 'transient',
        apiName: 'finish_reason_error',
      });
    }
    mock.setFault(() => ({ kind: 'filtered' }));
    expect((await client.generate(req('core'))).finishReason).toBe('CONTENT_FILTERED');
  });
  it('connection refused → transient, never sent', async () => {
    const { mock, client } = await setup();
    await mock.close();
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({ errorClass: 'transient', status: null, apiName: 'ECONNREFUSED', maybeBilled: false });
  });
  it('a reset after sending → timeout, maybe billed', async () => {
    const { client } = await setup({ fault: () => ({ kind: 'reset' }) });
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({ errorClass: 'timeout', status: null, maybeBilled: true });
    expect(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']).toContain(e.apiName);
  });
  it('a hung request times out promptly and frees its connection', async () => {
    const mock = await startMockApi({ fault: ({ prompt }) => (prompt === 'hang' ? { kind: 'hang' } : undefined) });
    cleanups.push(() => mock.close());
    const one = new Pool(mock.url, { connections: 1 });
    cleanups.push(() => one.close());
    const client = createStabilityClient({ baseUrl: mock.url, apiKey: KEY, requestTimeoutMs: 80, dispatcher: one });
    const t0 = Date.now();
    const e = await apiError(client.generate(req('core', { prompt: 'hang' })));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(e).toMatchObject({ errorClass: 'timeout', apiName: 'request_timeout', maybeBilled: true });
    // The single connection is usable again at once, and the hung socket is gone on the server.
    expect((await client.generate(req('core'))).finishReason).toBe('SUCCESS');
    await expect.poll(() => mock.stats.openSockets, { timeout: 1000 }).toBe(1);
  });
  it('a caller abort is reported as aborted, distinct from a timeout', async () => {
    const { client } = await setup({ fault: () => ({ kind: 'hang' }) });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    expect(await apiError(client.generate(req('core'), ac.signal))).toMatchObject({
      errorClass: 'timeout',
      apiName: 'aborted',
      maybeBilled: true,
    });
    expect(await apiError(client.getBalance(ac.signal))).toMatchObject({ apiName: 'aborted', maybeBilled: false });
  });
});

describe('pure classification', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('60', now)?.ms).toBe(60_000);
    expect(parseRetryAfter(' 1.5 ', now)?.ms).toBe(1500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)?.ms).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)?.ms).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
  it('classifies statuses and truncates long bodies', () => {
    expect(classifyHttpError(503, {}, '<html>gateway</html>').errorClass).toBe('transient');
    expect(classifyHttpError(429, { 'retry-after': '7' }, '').retryAfterMs).toBe(7000);
    const long = classifyHttpError(400, {}, JSON.stringify({ name: 'bad_request', errors: ['x'.repeat(5000)] }));
    expect(long.message.length).toBeLessThan(500);
    const objects = classifyHttpError(
      400,
      {},
      JSON.stringify({ name: 'bad_request', errors: [{ message: 'prompt is too long' }, { code: 7 }, 'plain'] }),
    );
    expect(objects.message).toContain('prompt is too long; {"code":7}; plain');
    expect(objects.message).not.toContain('[object Object]');
  });
  it.each([
    ['ENOTFOUND', 'transient', false],
    ['EAI_AGAIN', 'transient', false],
    ['UND_ERR_CONNECT_TIMEOUT', 'transient', false],
    ['ECONNRESET', 'timeout', true],
    ['EPIPE', 'timeout', true],
    ['UND_ERR_SOCKET', 'timeout', true],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout', true],
    ['UND_ERR_BODY_TIMEOUT', 'timeout', true],
  ])('transport %s → %s (maybeBilled %s)', (code, cls, billed) => {
    const err = Object.assign(new Error('boom'), { code });
    expect(classifyTransportError(err)).toMatchObject({ errorClass: cls, maybeBilled: billed });
  });
  it('finds codes inside AggregateError (happy eyeballs)', () => {
    const agg = new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })], 'all failed');
    expect(classifyTransportError(agg)).toMatchObject({ errorClass: 'transient', apiName: 'ECONNREFUSED' });
  });
});
