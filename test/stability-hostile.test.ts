import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ApiError } from '../src/errors.js';
import type { ModelId } from '../src/models.js';
import { placeholderBytes } from './helpers/images.js';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import type { Fault } from '../src/mock-api/types.js';
import { createLargeBodyTurn, readBounded } from '../src/stability/body.js';
import { classifyHttpError, MAX_RETRY_AFTER_MS, parseRetryAfter } from '../src/stability/classify.js';
import { createStabilityClient, type StabilityClientOptions } from '../src/stability/client.js';
import type { GenerateRequest } from '../src/stability/types.js';
import { MIN_RUN } from '../src/secrets.js';

const KEY = `sk-${randomBytes(30).toString('base64url').slice(0, 40)}`;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(fault?: Fault, clientOpts: Partial<StabilityClientOptions> = {}) {
  const mock: MockApi = await startMockApi(fault ? { fault: () => fault } : {});
  cleanups.push(() => mock.close());
  const client = createStabilityClient({ baseUrl: mock.url, apiKey: KEY, requestTimeoutMs: 10_000, ...clientOpts });
  cleanups.push(() => client.close());
  return { mock, client };
}

function req(model: ModelId, seed = 1234): GenerateRequest {
  const v1 = model.startsWith('stable-diffusion');
  return {
    model,
    prompt: 'A lighthouse on a cliff',
    negative_prompt: null,
    params: v1 ? { width: 1024, height: 1024, steps: 30, output_format: 'png' } : { output_format: 'png' },
    seed,
  };
}

/** Every text of an error that is stored or shown: none may hold the key or any 12 characters of it. */
function expectClean(e: ApiError): void {
  for (const text of [e.message, e.apiName, e.stack ?? '', JSON.stringify(e)]) {
    expect(text).not.toContain(KEY);
    for (let i = 0; i + MIN_RUN <= KEY.length; i++) expect(text).not.toContain(KEY.slice(i, i + MIN_RUN));
  }
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expectClean(err as ApiError);
  return err as ApiError;
}

/** A server that answers every request with `answer`, for shapes the fake does not make. */
async function serve(answer: (res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((_q, res) => answer(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the key echoed by the API never leaves the client', () => {
  it.each([
    ['name', 'core', 'invalid_request'],
    ['id', 'core', 'invalid_request'],
    ['message', 'stable-diffusion-v1-6', 'invalid_request'],
    ['long-message', 'core', 'invalid_request'],
    ['long-message', 'stable-diffusion-v1-6', 'invalid_request'],
    ['text', 'core', 'transient'],
  ] as const)('in the error %s (%s)', async (place, model, cls) => {
    const { client, mock } = await setup({ kind: 'echo-key', in: place });
    const e = await apiError(client.generate(req(model)));
    expect(e.errorClass).toBe(cls);
    expect(`${e.apiName} ${e.message}`).toContain('[redacted]');
    expect(mock.stats.total).toBe(1);
  });

  it('the long message is cut after redaction, so no prefix of the key survives the cut', async () => {
    const { client } = await setup({ kind: 'echo-key', in: 'long-message' });
    const e = await apiError(client.generate(req('core')));
    expect(e.message).toMatch(/could not be processed.*\[redacted\]/);
  });

  it('on 401 and 429 too (what pauses a queue or locks a key out)', async () => {
    const { client } = await setup({ kind: 'echo-key', in: 'name', status: 401 });
    expect((await apiError(client.getBalance())).errorClass).toBe('auth');
    const { client: c2 } = await setup({ kind: 'echo-key', in: 'message', status: 429 });
    expect((await apiError(c2.generate(req('core')))).errorClass).toBe('rate_limited');
  });

  it('other secrets given to the client are redacted as well', async () => {
    const redisPassword = 'redis-Pa55word-very-secret';
    const url = await serve((res) => res.writeHead(500).end(`upstream auth ${redisPassword} failed`));
    const client = createStabilityClient({
      baseUrl: url,
      apiKey: KEY,
      requestTimeoutMs: 5000,
      secrets: [redisPassword],
    });
    cleanups.push(() => client.close());
    const e = await apiError(client.generate(req('core')));
    expect(e.message).toContain('upstream auth [redacted] failed');
  });
});

describe('bodies are bounded', () => {
  it.each([
    ['with Content-Length', false],
    ['chunked', true],
  ] as const)('a 512 MiB 200 %s is transient response_too_large, never a success', async (_label, chunked) => {
    const { client, mock } = await setup({ kind: 'huge', chunked }, { maxResponseBytes: 1024 * 1024 });
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({ errorClass: 'transient', status: 200, apiName: 'response_too_large' });
    expect(mock.stats.generations.size).toBe(0);
    // The JSON modes are bounded the same way.
    const { client: json } = await setup({ kind: 'huge', chunked }, { maxResponseBytes: 1024 * 1024, accept: 'json' });
    expect((await apiError(json.generate(req('core')))).apiName).toBe('response_too_large');
    expect((await apiError(json.generate(req('stable-diffusion-v1-6')))).apiName).toBe('response_too_large');
  });

  it('stops reading at the limit: the server sees the connection dropped, not drained', async () => {
    let written = 0;
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      const chunk = Buffer.alloc(64 * 1024);
      res.on('close', () => closed());
      const pump = () => {
        while (!res.destroyed && written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
    });
    const res = await request(url);
    const body = await readBounded(res.body, 1024 * 1024, { whole: true });
    expect(body).toEqual({ bytes: Buffer.alloc(0), complete: false });
    await gone;
    // What the server got into socket buffers before it saw the close: nowhere near the 256 MiB.
    expect(written).toBeLessThan(32 * 1024 * 1024);
  });

  it('keeps the start of an overlong error body, and classifies it by its status', async () => {
    const url = await serve((res) => {
      res.writeHead(429, { 'retry-after': '5', 'content-type': 'application/json' });
      res.end(`{"name":"rate_limit_exceeded","errors":["${'x'.repeat(1024 * 1024)}"]}`);
    });
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({ errorClass: 'rate_limited', status: 429, retryAfterMs: 5000 });
  });

  it('bodies past 16 MiB take turns, and several at once all complete', async () => {
    const img = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png', padTo: 20 * 1024 * 1024 });
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'image/png', seed: '7' });
      // In pieces, without Content-Length, so every body grows past the turn's size while the others do.
      let at = 0;
      const pump = () => {
        while (at < img.length) {
          const piece = img.subarray(at, (at += 1024 * 1024));
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 20_000 });
    cleanups.push(() => client.close());
    const results = await Promise.all([1, 2, 3].map(() => client.generate(req('core'))));
    for (const r of results) expect(r.bytes.equals(img)).toBe(true);
  });

  it('the large-body turn goes to one holder at a time, in order, and skips a waiter that gave up', async () => {
    const turn = createLargeBodyTurn(1);
    const order: string[] = [];
    const releaseA = await turn.acquire();
    const gaveUp = new AbortController();
    const b = turn.acquire(gaveUp.signal).then(
      () => order.push('b'),
      () => order.push('b gave up'),
    );
    const c = turn.acquire().then((release) => {
      order.push('c');
      release();
    });
    gaveUp.abort(new Error('timeout'));
    await b;
    releaseA();
    await c;
    expect(order).toEqual(['b gave up', 'c']);
    const again = await turn.acquire(); // free again
    again();
  });

  it('an image at the limit is read whole', async () => {
    const img = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png', padTo: 200_000 });
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'image/png', seed: '7' }).end(img));
    const ok = createStabilityClient({
      baseUrl: url,
      apiKey: KEY,
      requestTimeoutMs: 5000,
      maxResponseBytes: img.length,
    });
    const small = createStabilityClient({
      baseUrl: url,
      apiKey: KEY,
      requestTimeoutMs: 5000,
      maxResponseBytes: img.length - 1,
    });
    cleanups.push(
      () => ok.close(),
      () => small.close(),
    );
    expect((await ok.generate(req('core'))).bytes.equals(img)).toBe(true);
    expect((await apiError(small.generate(req('core')))).apiName).toBe('response_too_large');
  });
});

describe('a 200 must be an image of the type it claims', () => {
  it.each([
    ['image', 'core'],
    ['json', 'core'],
    ['json', 'stable-diffusion-v1-6'],
  ] as const)('PNG magic followed by garbage is malformed (%s mode, %s)', async (accept, model) => {
    const { client, mock } = await setup({ kind: 'png-garbage' }, { accept });
    const e = await apiError(client.generate(req(model)));
    expect(e).toMatchObject({ errorClass: 'transient', status: 200, apiName: 'malformed_response' });
    expect(mock.stats.generations.size).toBe(0);
  });

  it.each([
    ['image/jpeg', 'malformed_response'],
    ['text/html', 'malformed_response'],
    ['application/json; type=image/webp', 'malformed_response'],
  ])('PNG bytes sent as %s fail', async (ctype) => {
    const png = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    const body = ctype.startsWith('application/json')
      ? JSON.stringify({ image: png.toString('base64'), finish_reason: 'SUCCESS', seed: 1 })
      : png;
    const url = await serve((res) => res.writeHead(200, { 'content-type': ctype }).end(body));
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    expect((await apiError(client.generate(req('core')))).apiName).toBe('malformed_response');
  });

  it('with no content-type the format asked for is the claim', async () => {
    const png = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    const url = await serve((res) => {
      res.removeHeader('content-type');
      res.writeHead(200, { seed: '5' }).end(png);
    });
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    expect(await client.generate(req('core'))).toMatchObject({ mime: 'image/png', seed: 5, warnings: [] });
    const jpegAsked = { ...req('core'), params: { output_format: 'jpeg' as const } };
    expect((await apiError(client.generate(jpegAsked))).apiName).toBe('malformed_response');
  });
});

describe('response headers are checked, never fatal after a 200', () => {
  it.each([
    ['image', 'core', '1e21'],
    ['image', 'core', '-1'],
    ['image', 'core', 'abc'],
    ['image', 'core', '4294967295'],
    ['json', 'core', '1e21'],
    ['json', 'stable-diffusion-v1-6', '1e21'],
    ['json', 'stable-diffusion-v1-6', '"12"x'],
  ] as const)('a seed of %s (%s, %s) is the requested seed plus a warning', async (accept, model, value) => {
    const { client, mock } = await setup({ kind: 'bad-seed', value }, { accept });
    const r = await client.generate(req(model, 777));
    expect(r.seed).toBe(777);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/not a seed .*recorded the requested seed 777/);
    expect(mock.stats.generations.size).toBe(1);
  });

  it('a seed echoing the key is redacted in the warning', async () => {
    const { client } = await setup({ kind: 'bad-seed', value: KEY });
    const r = await client.generate(req('core', 9));
    expect(r.warnings.join(' ')).not.toContain(KEY.slice(0, MIN_RUN));
  });

  it('a request id echoing the key is redacted', async () => {
    const png = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    const url = await serve((res) =>
      res.writeHead(200, { 'content-type': 'image/png', seed: '1', 'x-request-id': `id-${KEY}` }).end(png),
    );
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    expect((await client.generate(req('core'))).requestId).toBe('id-[redacted]');
  });

  it.each([
    ['SUCCESS_WITH_WARNINGS', 'SUCCESS'],
    ['success', 'SUCCESS'],
    [' Content_Filtered ', 'CONTENT_FILTERED'],
    ['FILTERED_NSFW', 'CONTENT_FILTERED'],
  ] as const)('a finish-reason of %j with a good image is %s plus a warning', async (value, reason) => {
    const png = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    let sent = 0;
    const url = await serve((res) => {
      sent++;
      res.writeHead(200, { 'content-type': 'image/png', seed: '1', 'finish-reason': value }).end(png);
    });
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    const r = await client.generate(req('core'));
    expect(r).toMatchObject({ finishReason: reason, mime: 'image/png' });
    expect(r.bytes.equals(png)).toBe(true);
    expect(r.warnings).toEqual([expect.stringMatching(/finish-reason header .* is not one the API documents/)]);
    expect(sent).toBe(1);
  });

  it('an unknown finish reason in a JSON answer, v2 or v1, keeps the image', async () => {
    const png = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    const url = await serve((res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          image: png.toString('base64'),
          finish_reason: 'NEW_REASON',
          seed: 1,
          artifacts: [{ base64: png.toString('base64'), seed: 1, finishReason: 'Partial' }],
        }),
      ),
    );
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000, accept: 'json' });
    cleanups.push(() => client.close());
    for (const model of ['core', 'stable-diffusion-v1-6'] as const) {
      const r = await client.generate(req(model, 1));
      expect(r).toMatchObject({ finishReason: 'SUCCESS', mime: 'image/png' });
      expect(r.warnings).toHaveLength(1);
    }
  });

  it('an image type spelled otherwise (image/x-png) is the image its bytes show, with a warning', async () => {
    const png = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'image/x-png', seed: '1' }).end(png));
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    const r = await client.generate(req('core'));
    expect(r).toMatchObject({ mime: 'image/png', finishReason: 'SUCCESS' });
    expect(r.warnings).toEqual([
      expect.stringMatching(/content-type image\/x-png is unknown; the body is a valid image\/png/),
    ]);
  });

  it('an unknown image type over bytes that are no image is malformed', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'image/x-png' }).end('<html>oops</html>'));
    const client = createStabilityClient({ baseUrl: url, apiKey: KEY, requestTimeoutMs: 5000 });
    cleanups.push(() => client.close());
    expect((await apiError(client.generate(req('core')))).apiName).toBe('malformed_response');
  });

  it('an in-range seed gives no warning', async () => {
    const { client } = await setup({ kind: 'bad-seed', value: '4294967294' });
    expect(await client.generate(req('core', 3))).toMatchObject({ seed: 4294967294, warnings: [] });
  });

  it("a v1 engine's largest seed is its seed, not a warning", async () => {
    const { client } = await setup({ kind: 'bad-seed', value: '4294967295' }, { accept: 'json' });
    expect(await client.generate(req('stable-diffusion-v1-6', 3))).toMatchObject({ seed: 4294967295, warnings: [] });
  });
});

describe('Retry-After', () => {
  it('is capped at 10 minutes and says so', async () => {
    const { client } = await setup({ status: 429, retryAfterSec: 999999999 });
    const e = await apiError(client.generate(req('core')));
    expect(e).toMatchObject({ errorClass: 'rate_limited', retryAfterMs: MAX_RETRY_AFTER_MS, retryAfterCapped: true });
    expect(e.message).toMatch(/retry after 600 s \(the server asked for more: capped\)/);
  });

  it('parses huge, odd and hostile values without overflow', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('999999999', now)).toEqual({ ms: MAX_RETRY_AFTER_MS, capped: true });
    expect(parseRetryAfter('9'.repeat(400), now)).toEqual({ ms: MAX_RETRY_AFTER_MS, capped: true });
    expect(parseRetryAfter('Fri, 01 Jan 2055 00:00:00 GMT', now)).toEqual({ ms: MAX_RETRY_AFTER_MS, capped: true });
    expect(parseRetryAfter('600', now)).toEqual({ ms: 600_000, capped: false });
    expect(parseRetryAfter('0', now)).toEqual({ ms: 0, capped: false });
    for (const bad of ['1e21', '-1', 'NaN', 'Infinity', '0x10', '', '  '])
      expect(parseRetryAfter(bad, now)).toBeUndefined();
    const e = classifyHttpError(429, { 'retry-after': '1e21' }, '');
    expect(e).toMatchObject({ retryAfterMs: undefined, retryAfterCapped: false });
  });
});
