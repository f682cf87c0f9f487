import { afterEach, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { crc32 } from '../src/metadata/crc32.js';
import { parseMockApiOptions, parseByteSize } from '../src/mock-api/cli-options.js';
import { placeholderBytes } from './helpers/images.js';
import { startMockApi, type MockApi, type MockApiOptions } from '../src/mock-api/server.js';
import { maxInWindow } from '../src/mock-api/stats.js';
import { UsageError } from '../src/errors.js';

const KEY = 'sk-test-mock-0123456789';
let mock: MockApi | undefined;
afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

async function start(opts: MockApiOptions = {}): Promise<MockApi> {
  mock = await startMockApi(opts);
  return mock;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: () => any;
}

async function call(
  path: string,
  init: {
    method?: string;
    form?: Record<string, string>;
    json?: unknown;
    headers?: Record<string, string>;
    key?: string | null;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? KEY}`;
  let body: FormData | string | undefined;
  if (init.form) {
    body = new FormData();
    for (const [k, v] of Object.entries(init.form)) body.set(k, v);
  } else if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await request(mock!.url + path, {
    method: (init.method ?? (body ? 'POST' : 'GET')) as 'GET',
    headers,
    body,
  });
  const buf = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')) };
}

const CORE = '/v2beta/stable-image/generate/core';
const SD3 = '/v2beta/stable-image/generate/sd3';
const V16 = '/v1/generation/stable-diffusion-v1-6/text-to-image';
const SDXL = '/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image';
const v1Body = (over: Record<string, unknown> = {}) => ({
  text_prompts: [{ text: 'A lighthouse on a cliff', weight: 1 }],
  cfg_scale: 7,
  height: 1024,
  width: 1024,
  samples: 1,
  steps: 30,
  seed: 5,
  ...over,
});

function pngChunksValid(buf: Buffer): boolean {
  if (buf.readUInt32BE(0) !== 0x89504e47) return false;
  let i = 8;
  let last = '';
  while (i < buf.length) {
    const n = buf.readUInt32BE(i);
    last = buf.toString('latin1', i + 4, i + 8);
    if (crc32(buf.subarray(i + 4, i + 8 + n)) !== buf.readUInt32BE(i + 8 + n)) return false;
    i += 12 + n;
  }
  return i === buf.length && last === 'IEND';
}

describe('placeholders and crc32', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
  it('are deterministic, valid and distinct per seed', () => {
    const a = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' });
    expect(placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png' }).equals(a)).toBe(true);
    expect(placeholderBytes({ model: 'core', prompt: 'p', seed: 2, format: 'png' }).equals(a)).toBe(false);
    expect(pngChunksValid(a)).toBe(true);
    const jpg = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'jpeg' });
    expect([...jpg.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    expect(jpg.subarray(-2).toString('hex')).toBe('ffd9');
    expect(jpg.includes(Buffer.from('seed=1'))).toBe(true);
    const webp = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'webp' });
    expect(webp.toString('latin1', 0, 4) + webp.toString('latin1', 8, 16)).toBe('RIFFWEBPVP8L');
    expect(webp.readUInt32LE(4)).toBe(webp.length - 8);
  });
  it('pads to about imageBytes and stays a valid PNG', () => {
    const big = placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png', padTo: 1_500_000 });
    expect(Math.abs(big.length - 1_500_000)).toBeLessThan(8192);
    expect(pngChunksValid(big)).toBe(true);
  });
});

describe('mock API: v2beta', () => {
  it('answers image/* with raw bytes and the documented headers', async () => {
    await start();
    const r = await call(CORE, {
      form: { prompt: 'a cat', seed: '42', output_format: 'png' },
      headers: { accept: 'image/*' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['finish-reason']).toBe('SUCCESS');
    expect(r.headers.seed).toBe('42');
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(r.body.equals(placeholderBytes({ model: 'core', prompt: 'a cat', seed: 42, format: 'png' }))).toBe(true);
    expect(mock!.stats.generations.get('core|a cat|42')).toBe(1);
    expect(mock!.stats.billedCredits).toBe(3);
  });
  it('answers application/json with base64 and a typed content type, without finish headers', async () => {
    await start();
    const r = await call(SD3, {
      form: {
        prompt: 'a cat',
        seed: '7',
        output_format: 'jpeg',
        model: 'sd3.5-medium',
        cfg_scale: '4',
        mode: 'text-to-image',
      },
      headers: { accept: 'application/json' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; type=image/jpeg');
    expect(r.headers['finish-reason']).toBeUndefined();
    const j = r.json();
    expect(j).toMatchObject({ finish_reason: 'SUCCESS', seed: 7 });
    expect(
      Buffer.from(j.image, 'base64').equals(
        placeholderBytes({ model: 'sd3.5-medium', prompt: 'a cat', seed: 7, format: 'jpeg' }),
      ),
    ).toBe(true);
    expect(mock!.stats.billedCredits).toBe(3.5);
  });
  it('requires multipart/form-data', async () => {
    await start();
    const r = await call(CORE, { json: { prompt: 'a cat' } });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ name: 'bad_request', errors: ['content-type: must be multipart/form-data'] });
    expect(r.json().id).toMatch(/^[0-9a-f]{32}$/);
  });
  it.each([
    [{ prompt: '' }, 'prompt: is required'],
    [{ prompt: 'x'.repeat(10001) }, 'prompt: must be at most 10000'],
    [{ prompt: 'a', aspect_ratio: '4:3' }, 'aspect_ratio: must be one of'],
    [{ prompt: 'a', output_format: 'gif' }, 'output_format: must be one of'],
    [{ prompt: 'a', style_preset: 'watercolour' }, 'style_preset: must be one of'],
    [{ prompt: 'a', seed: '4294967295' }, 'seed: must be an integer'],
  ])('validates %j', async (form, msg) => {
    await start();
    const r = await call(CORE, { form });
    expect(r.status).toBe(400);
    expect(r.json().errors.join(';')).toContain(msg);
  });
  it('validates sd3 cfg_scale and model', async () => {
    await start();
    const r = await call(SD3, { form: { prompt: 'a', cfg_scale: '11', model: 'sd3-large' } });
    expect(r.status).toBe(400);
    expect(r.json().errors).toEqual([expect.stringContaining('model:'), expect.stringContaining('cfg_scale:')]);
    expect((await call(SD3, { form: { prompt: 'a', model: 'sd3.5-flash', cfg_scale: '1' } })).status).toBe(200);
  });
  it('moderates `forbidden` with 403 (not billed) and blurs `blur-me` (billed)', async () => {
    await start();
    const r = await call(CORE, { form: { prompt: 'a forbidden scene' } });
    expect(r.status).toBe(403);
    expect(r.json()).toMatchObject({ name: 'content_moderation', errors: [expect.stringContaining('not charged')] });
    const f = await call(CORE, { form: { prompt: 'please blur-me', seed: '3' } });
    expect(f.headers['finish-reason']).toBe('CONTENT_FILTERED');
    expect(mock!.stats.billedCredits).toBe(3);
    expect(mock!.stats.generations.size).toBe(1);
  });
  it('picks a random seed for seed 0 or none', async () => {
    await start();
    const r = await call(CORE, { form: { prompt: 'a', seed: '0' } });
    expect(Number(r.headers.seed)).toBeGreaterThan(0);
    const j = (await call(CORE, { form: { prompt: 'a' }, headers: { accept: 'application/json' } })).json();
    expect(j.seed).toBeGreaterThan(0);
  });
});

describe('mock API: v1', () => {
  it('returns artifacts and bills per steps', async () => {
    await start();
    const r = await call(V16, { json: v1Body({ steps: 45 }), headers: { accept: 'application/json' } });
    expect(r.status).toBe(200);
    const a = r.json().artifacts;
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ seed: 5, finishReason: 'SUCCESS' });
    expect(Buffer.from(a[0].base64, 'base64').subarray(1, 4).toString()).toBe('PNG');
    expect(mock!.stats.billedCredits).toBeCloseTo(1.35);
  });
  it('serves samples > 1 only as JSON', async () => {
    await start();
    expect((await call(SDXL, { json: v1Body({ samples: 2 }) })).json().artifacts.map((x: any) => x.seed)).toEqual([
      5, 6,
    ]);
    const png = await call(SDXL, { json: v1Body({ samples: 2 }), headers: { accept: 'image/png' } });
    expect(png.json()).toMatchObject({ name: 'invalid_samples' });
    const one = await call(SDXL, { json: v1Body(), headers: { accept: 'image/png' } });
    expect(one.headers['content-type']).toBe('image/png');
    expect(one.headers['finish-reason']).toBe('SUCCESS');
  });
  it.each([
    [SDXL, { width: 512, height: 512 }, 'invalid_height_or_width'],
    [V16, { width: 256, height: 256 }, 'invalid_height_or_width'],
    [V16, { width: 1000, height: 512 }, 'invalid_height_or_width'],
    [V16, { steps: 5 }, 'bad_request'],
    [V16, { cfg_scale: 36 }, 'bad_request'],
    [V16, { samples: 11 }, 'bad_request'],
    [V16, { text_prompts: [] }, 'bad_request'],
    [V16, { text_prompts: [{ text: 'x'.repeat(2001) }] }, 'bad_request'],
  ])('validates %s %j', async (path, over, name) => {
    await start();
    const r = await call(path, { json: v1Body(over) });
    expect(r.status).toBe(400);
    expect(Object.keys(r.json()).sort()).toEqual(['id', 'message', 'name']);
    expect(r.json().name).toBe(name);
  });
  it('requires JSON and knows its engines', async () => {
    await start();
    expect((await call(V16, { form: { prompt: 'a' } })).status).toBe(400);
    const r = await call('/v1/generation/stable-diffusion-v1-5/text-to-image', { json: v1Body() });
    expect(r.status).toBe(404);
    expect(r.json()).toMatchObject({
      name: 'not_found',
      message: 'The specified engine (ID stable-diffusion-v1-5) was not found.',
    });
  });
  it('rejects filtered words, negative prompts included, with 400 invalid_prompts', async () => {
    await start();
    const r = await call(V16, {
      json: v1Body({
        text_prompts: [
          { text: 'ok', weight: 1 },
          { text: 'Forbidden', weight: -1 },
        ],
      }),
    });
    expect(r.status).toBe(400);
    expect(r.json().name).toBe('invalid_prompts');
    expect(mock!.stats.billedCredits).toBe(0);
  });
  it('serves balance and engines', async () => {
    await start({ balance: 12.5 });
    expect((await call('/v1/user/balance')).json()).toEqual({ credits: 12.5 });
    expect((await call('/v1/engines/list')).json()).toEqual([
      expect.objectContaining({ id: 'stable-diffusion-v1-6', type: 'PICTURE' }),
      expect.objectContaining({ id: 'stable-diffusion-xl-1024-v1-0', type: 'PICTURE' }),
    ]);
  });
});

describe('mock API: auth and balance', () => {
  it('needs a key, checks it when configured, and validates before authenticating', async () => {
    await start({ apiKey: KEY });
    expect((await call(CORE, { form: { prompt: 'a' }, key: null })).status).toBe(401);
    const bad = await call(CORE, { form: { prompt: 'a' }, key: 'sk-wrong' });
    expect(bad.status).toBe(401);
    expect(bad.json().name).toBe('unauthorized');
    expect((await call(CORE, { form: { prompt: '' }, key: 'sk-wrong' })).status).toBe(400);
    expect((await call('/v1/user/balance', { key: null })).json()).toMatchObject({
      name: 'unauthorized',
      message: expect.any(String),
    });
  });
  it('answers 402 when the balance runs out (v2 and v1 shapes)', async () => {
    await start({ balance: 4 });
    expect((await call(CORE, { form: { prompt: 'a', seed: '1' } })).status).toBe(200);
    const r = await call(CORE, { form: { prompt: 'a', seed: '2' } });
    expect(r.status).toBe(402);
    expect(r.json()).toMatchObject({
      name: 'payment_required',
      errors: [expect.stringContaining('lack sufficient credits')],
    });
    expect((await call('/v1/user/balance')).json().credits).toBe(1);
    mock!.setBalance(0.5);
    const v1 = await call(V16, { json: v1Body() });
    expect(v1.status).toBe(402);
    expect(v1.json()).toMatchObject({ name: 'payment_required', message: expect.any(String) });
  });
});

describe('mock API: rate limit', () => {
  it('is a strict sliding window with a lockout, counting every request', async () => {
    let t = 0;
    await start({ now: () => t, rateLimit: { count: 3, windowMs: 1000, lockoutMs: 5000 } });
    expect((await call('/v1/user/balance')).status).toBe(200);
    expect((await call('/v1/engines/list')).status).toBe(200);
    expect((await call(CORE, { form: { prompt: 'a' } })).status).toBe(200);
    const limited = await call(CORE, { form: { prompt: 'a' } });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBeUndefined();
    expect(limited.json()).toMatchObject({ id: 'rate_limit_exceeded', name: 'rate_limit_exceeded' });
    expect(limited.json().errors[0]).toContain('3 requests within a 1 second period');
    t = 4999;
    expect((await call('/v1/user/balance')).status).toBe(429); // still locked out, window long over
    t = 5000;
    expect((await call('/v1/user/balance')).status).toBe(200);
    t = 5500;
    expect((await call('/v1/user/balance')).status).toBe(200);
    t = 5999;
    expect((await call('/v1/user/balance')).status).toBe(200);
    t = 6000; // 5000 just left the window (6000-1000, 6000]
    expect((await call('/v1/user/balance')).status).toBe(200);
    t = 6001; // 5500, 5999, 6000 are in the window: a 4th is one too many
    expect((await call(V16, { json: v1Body() })).json()).toMatchObject({
      name: 'rate_limit_exceeded',
      message: expect.any(String),
    });
    expect(mock!.stats.rateLimited).toBe(3);
    expect(mock!.stats.total).toBe(10);
    expect(mock!.stats.byStatus.get(429)).toBe(3);
    expect(mock!.stats.maxInWindow(1000)).toBe(4);
  });
  it('sends Retry-After when asked, keyed per API key', async () => {
    let t = 0;
    await start({ now: () => t, rateLimit: { count: 1, windowMs: 1000, lockoutMs: 60_000, retryAfter: true } });
    await call('/v1/user/balance');
    expect((await call('/v1/user/balance')).headers['retry-after']).toBe('60');
    t = 30_000;
    expect((await call('/v1/user/balance')).headers['retry-after']).toBe('30');
    expect((await call('/v1/user/balance', { key: 'sk-other-key' })).status).toBe(200);
  });
  it('maxInWindow uses half-open windows', () => {
    expect(maxInWindow([0, 999, 1000, 1001], 1000)).toBe(3);
    expect(maxInWindow([], 1000)).toBe(0);
  });
});

describe('mock API: faults', () => {
  it('fails deterministically with failRate, whatever the order', async () => {
    const prompts = Array.from({ length: 40 }, (_, i) => `p${i}`);
    const run = async (order: string[]) => {
      const out = new Map<string, number>();
      for (const p of order) out.set(p, (await call(CORE, { form: { prompt: p, seed: '9' } })).status);
      return out;
    };
    await start({ failRate: 0.3 });
    const first = await run(prompts);
    mock!.reset();
    const second = await run([...prompts].reverse());
    expect([...second.entries()].sort()).toEqual([...first.entries()].sort());
    const failed = [...first.values()].filter((s) => s === 500).length;
    expect(failed).toBeGreaterThan(3);
    expect(failed).toBeLessThan(25);
    // A retry is a new attempt with its own draw, so it can succeed.
    const retried = await run([...first.entries()].filter(([, s]) => s === 500).map(([p]) => p));
    expect([...retried.values()].some((s) => s === 200)).toBe(true);
  });
  it('passes model, prompt, seed and attempt to the fault function', async () => {
    const seen: unknown[] = [];
    await start({
      fault: (ctx) => {
        seen.push({ ...ctx });
        return ctx.attempt === 1 ? { status: 422, name: 'invalid_language', message: 'English only' } : undefined;
      },
    });
    const r = await call(SD3, { form: { prompt: 'hola', seed: '4', model: 'sd3.5-flash' } });
    expect(r.status).toBe(422);
    expect(r.json()).toMatchObject({ name: 'invalid_language', errors: ['English only'] });
    expect((await call(SD3, { form: { prompt: 'hola', seed: '4', model: 'sd3.5-flash' } })).status).toBe(200);
    expect(seen).toEqual([
      { model: 'sd3.5-flash', prompt: 'hola', seed: 4, attempt: 1, path: SD3 },
      { model: 'sd3.5-flash', prompt: 'hola', seed: 4, attempt: 2, path: SD3 },
    ]);
    expect(mock!.stats.generations.get('sd3.5-flash|hola|4')).toBe(1);
  });
  it('resets the socket, hangs until closed, and delays', async () => {
    await start({
      fault: ({ prompt }) =>
        prompt === 'reset'
          ? { kind: 'reset' }
          : prompt === 'hang'
            ? { kind: 'hang' }
            : prompt === 'slow'
              ? { kind: 'delay', ms: 60 }
              : undefined,
    });
    await expect(call(CORE, { form: { prompt: 'reset' } })).rejects.toThrow();
    const t0 = Date.now();
    expect((await call(CORE, { form: { prompt: 'slow' } })).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    const hung = call(CORE, { form: { prompt: 'hang' } });
    await new Promise((r) => setTimeout(r, 30));
    await mock!.close();
    await expect(hung).rejects.toThrow();
    expect(mock!.stats.generations.size).toBe(1);
  });
  it('applies latency from the request hash', async () => {
    // Wide margins: only the generation is delayed, and a busy CI machine must not flip the result.
    await start({ latencyMs: [400, 420] });
    const t0 = Date.now();
    await call(CORE, { form: { prompt: 'a', seed: '1' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(395);
    const t1 = Date.now();
    await call('/v1/user/balance');
    expect(Date.now() - t1).toBeLessThan(300);
  });
});

describe('mock API: request log', () => {
  it('records who sent each request, when it arrived and was answered, and whether it was billed', async () => {
    let t = 1000;
    await start({ now: () => t, fault: ({ prompt }) => (prompt === 'hang' ? { kind: 'hang' } : undefined) });
    expect((await call(CORE, { form: { prompt: 'a', seed: '1' } })).status).toBe(200);
    t = 2000;
    expect((await call(CORE, { form: { prompt: 'forbidden', seed: '2' } })).status).toBe(403);
    expect((await call('/v1/user/balance')).status).toBe(200);
    const hung = call(CORE, { form: { prompt: 'hang', seed: '3' } });
    await expect.poll(() => mock!.stats.requests.length).toBe(4);
    expect(mock!.stats.requests).toEqual([
      { remote: '127.0.0.1', arrival: 1000, generation: 'core|a|1', billed: true, status: 200, finishedAt: 1000 },
      {
        remote: '127.0.0.1',
        arrival: 2000,
        generation: 'core|forbidden|2',
        billed: false,
        status: 403,
        finishedAt: 2000,
      },
      { remote: '127.0.0.1', arrival: 2000, generation: null, billed: false, status: 200, finishedAt: 2000 },
      { remote: '127.0.0.1', arrival: 2000, generation: 'core|hang|3', billed: false, status: null, finishedAt: null },
    ]);
    await mock!.close();
    await expect(hung).rejects.toThrow();
    mock!.reset();
    expect(mock!.stats.requests).toEqual([]);
  });
});

describe('mock-api CLI options', () => {
  it('parses every option', () => {
    expect(
      parseMockApiOptions({
        latency: '100-400',
        rate: '150/10',
        lockout: '60',
        retryAfter: true,
        failRate: '0.1',
        balance: '500',
        apiKey: 'sk-x',
        imageBytes: '1.5m',
      }),
    ).toEqual({
      latencyMs: [100, 400],
      rateLimit: { count: 150, windowMs: 10_000, lockoutMs: 60_000, retryAfter: true },
      failRate: 0.1,
      balance: 500,
      apiKey: 'sk-x',
      imageBytes: 1572864,
    });
    expect(parseMockApiOptions({ latency: '250' })).toEqual({ latencyMs: 250 });
    expect(parseMockApiOptions({ rate: '5/2' }).rateLimit).toEqual({
      count: 5,
      windowMs: 2000,
      lockoutMs: 60_000,
      retryAfter: false,
    });
    expect(parseMockApiOptions({ lockout: '1' }).rateLimit).toMatchObject({ count: 150, lockoutMs: 1000 });
    expect(parseMockApiOptions({})).toEqual({});
    expect(parseByteSize('1500000')).toBe(1_500_000);
  });
  it.each([
    { latency: '9-3' },
    { latency: 'fast' },
    { rate: '150' },
    { rate: '0/10' },
    { failRate: '2' },
    { balance: '-1' },
    { imageBytes: 'big' },
    { balance: '0x10' },
    { failRate: '1e-1' },
    { lockout: '' },
    { latency: '1-2-3' },
    { apiKey: '' },
    { fault: 'explode' },
  ])('rejects %j', (raw) => {
    expect(() => parseMockApiOptions(raw)).toThrow(UsageError);
  });
});

describe('mock-api --fault', () => {
  it('applies a named hostile answer to generations only', async () => {
    const { fault } = parseMockApiOptions({ fault: 'echo-name' });
    expect(fault?.({ model: 'core', prompt: 'p', seed: 1, attempt: 1, path: CORE })).toEqual({
      kind: 'echo-key',
      in: 'name',
    });
    expect(fault?.({ model: '', prompt: '', seed: 0, attempt: 1, path: '/v1/user/balance' })).toBeUndefined();
    await start({ fault });
    const r = await call(CORE, { form: { prompt: 'a cat' } });
    expect(r.status).toBe(400);
    expect(r.json().name).toBe(`Bearer ${KEY}`);
    expect((await call('/v1/user/balance')).status).toBe(200);
  });
  it('seed-1e21 sends the raw seed in every mode, and is billed', async () => {
    await start(parseMockApiOptions({ fault: 'seed-1e21' }));
    const img = await call(CORE, { form: { prompt: 'a cat', seed: '5' } });
    expect(img.headers.seed).toBe('1e21');
    const json = await call(CORE, { form: { prompt: 'a cat', seed: '5' }, headers: { accept: 'application/json' } });
    expect(json.body.toString()).toContain('"seed":1e21');
    const v1 = await call(V16, {
      json: { text_prompts: [{ text: 'a cat' }], width: 512, height: 512 },
      headers: { accept: 'application/json' },
    });
    expect(v1.body.toString()).toContain('"seed":1e21');
    expect([...mock!.stats.generations.values()].reduce((a, b) => a + b, 0)).toBe(3);
  });
  it('echo-long-message puts the key across the 300th character', async () => {
    await start({ fault: () => ({ kind: 'echo-key', in: 'long-message' }) });
    const message: string = (await call(CORE, { form: { prompt: 'a cat' } })).json().errors[0];
    expect(message.indexOf(KEY)).toBe(281);
  });
});
