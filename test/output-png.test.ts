import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 as zlibCrc32, deflateSync, inflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32 } from '../src/metadata/crc32.js';
import { pngTextParts, readPngText } from '../src/metadata/png-text.js';

const addPngTextChunks = (png: Buffer, entries: Record<string, string>) => Buffer.concat(pngTextParts(png, entries));
import { formatParameters, parseParameters } from '../src/metadata/parameters.js';
import type { ParametersJob } from '../src/metadata/parameters.js';
import { findExistingImage } from '../src/output/image-writer.js';
import { listChunks, makeJob, makeRecord, pngChunk, saveImage, tinyPng, writeSidecar } from './output-fixtures.js';
import { tempDir } from './helpers/temp.js';

describe('crc32', () => {
  it('matches the standard check value and zlib', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
    for (let n = 0; n < 50; n++) {
      const b = randomBytes(n * 37);
      expect(crc32(b)).toBe(zlibCrc32(b) >>> 0);
    }
  });
});

describe('PNG text chunks', () => {
  it('round-trips Latin-1 (tEXt) and Unicode (iTXt) text, right after IHDR, with valid CRCs', () => {
    const png = tinyPng();
    const entries = {
      parameters: 'café, sunset\nNegative prompt: blurry\nSeed: 1, Model: core, Format: png',
      nightshift: JSON.stringify({ prompt: '夕焼けの海 🌅', seed: 1 }),
      Comment: '',
    };
    const out = addPngTextChunks(png, entries);
    const chunks = listChunks(out);
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'tEXt', 'iTXt', 'tEXt', 'IDAT', 'IEND']);
    expect(chunks.every((c) => c.crcOk)).toBe(true);
    expect(readPngText(out).text).toEqual(entries);
    // The pixels are untouched.
    const idat = (b: Buffer) => inflateSync(listChunks(b).find((c) => c.type === 'IDAT')!.data);
    expect(idat(out).equals(idat(png))).toBe(true);
    expect(png.equals(tinyPng())).toBe(true); // input not mutated
  });

  it('replaces text chunks with the same keyword instead of duplicating them', () => {
    const once = addPngTextChunks(tinyPng(), { parameters: 'old', other: 'kept' });
    const twice = addPngTextChunks(once, { parameters: 'new' });
    const types = listChunks(twice).filter((c) => c.type === 'tEXt');
    expect(types).toHaveLength(2);
    expect(readPngText(twice).text).toEqual({ parameters: 'new', other: 'kept' });
  });

  it('reads zTXt and compressed iTXt, and skips chunks with a bad CRC', () => {
    const ztxt = pngChunk(
      'zTXt',
      Buffer.concat([Buffer.from('zkey\0\0', 'latin1'), deflateSync(Buffer.from('zipped text', 'latin1'))]),
    );
    const itxt = pngChunk(
      'iTXt',
      Buffer.concat([
        Buffer.from('ikey\0\x01\0en\0Schlüssel\0', 'latin1'),
        deflateSync(Buffer.from('ünïcödé ✓', 'utf8')),
      ]),
    );
    const bad = pngChunk('tEXt', Buffer.from('badkey\0text', 'latin1'));
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    const png = tinyPng(2, 2, [ztxt, itxt, bad]);
    expect(readPngText(png).text).toEqual({ zkey: 'zipped text', ikey: 'ünïcödé ✓' });
  });

  it('reads what precedes the damage of a truncated file', () => {
    const png = addPngTextChunks(tinyPng(), { parameters: 'p' });
    expect(readPngText(png.subarray(0, png.length - 20)).text).toEqual({ parameters: 'p' });
  });

  it('validates the signature, IHDR and keywords', () => {
    expect(() => addPngTextChunks(Buffer.from('GIF89a....'), { a: 'b' })).toThrow(/signature/);
    const noIhdr = Buffer.concat([tinyPng().subarray(0, 8), pngChunk('IDAT', Buffer.alloc(3))]);
    expect(() => addPngTextChunks(noIhdr, { a: 'b' })).toThrow(/IHDR/);
    const badCrc = Buffer.from(tinyPng());
    badCrc[8 + 8 + 13] = badCrc[8 + 8 + 13]! ^ 0xff; // first byte of IHDR's CRC
    expect(() => addPngTextChunks(badCrc, { a: 'b' })).toThrow(/CRC/);
    for (const key of ['', 'x'.repeat(80), ' lead', 'trail ', 'dou  ble', 'nul\0', 'ünï✓']) {
      expect(() => addPngTextChunks(tinyPng(), { [key]: 'v' }), JSON.stringify(key)).toThrow(/keyword/);
    }
    expect(() => readPngText(Buffer.from('nope'))).toThrow(/signature/);
  });
});

describe('A1111 parameters', () => {
  const v1: ParametersJob = {
    prompt: 'a cat, on a roof',
    negative_prompt: 'blurry',
    model: 'stable-diffusion-xl-1024-v1-0',
    params: { steps: 30, cfg_scale: 7, width: 1024, height: 1024, output_format: 'png' },
    seed: 123,
  };

  it('writes the format other tools read', () => {
    expect(formatParameters(v1, { jobId: 'b--abc' })).toBe(
      'a cat, on a roof\nNegative prompt: blurry\n' +
        'Steps: 30, CFG scale: 7, Seed: 123, Size: 1024x1024, Model: stable-diffusion-xl-1024-v1-0, Format: png, Nightshift job: b--abc',
    );
    expect(
      formatParameters({
        prompt: 'x',
        negative_prompt: null,
        model: 'core',
        params: { aspect_ratio: '16:9', style_preset: 'anime', output_format: 'webp' },
        seed: 5,
      }),
    ).toBe('x\nSeed: 5, Model: core, Aspect ratio: "16:9", Style preset: anime, Format: webp');
  });

  const cases: ParametersJob[] = [
    v1,
    { ...v1, negative_prompt: null },
    {
      ...v1,
      prompt: 'line one, with commas\nline two: colon\n\nline four "quoted" \\ backslash',
      negative_prompt: 'neg, a\nneg b\n',
    },
    { ...v1, prompt: 'Steps: 1, Seed: 2, Model: fake', negative_prompt: null },
    { ...v1, prompt: '  spaced  ', negative_prompt: '  x' },
    {
      prompt: '夕焼け 🌅, アニメ',
      negative_prompt: 'ugly',
      model: 'sd3.5-large',
      params: { cfg_scale: 4.5, aspect_ratio: '21:9', output_format: 'jpeg' },
      seed: 4294967294,
    },
  ];
  it.each(cases.map((c, i) => [i, c] as const))('round-trips case %i', (_i, job) => {
    const text = formatParameters(job, { jobId: 'batch:with, odd "id"' });
    const back = parseParameters(text);
    expect(back.prompt).toBe(job.prompt);
    expect(back.negative_prompt).toBe(job.negative_prompt);
    expect(back.seed).toBe(job.seed);
    expect(back.model).toBe(job.model);
    expect(back.params).toEqual(job.params);
    expect(back.jobId).toBe('batch:with, odd "id"');
  });

  it('reads parameters written by A1111 itself', () => {
    const p = parseParameters(
      'masterpiece, 1girl\nNegative prompt: lowres, bad hands\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: abc123, Model: anything-v3, Lora hashes: "a: 1, b: 2", Version: v1.6.0',
    );
    expect(p.prompt).toBe('masterpiece, 1girl');
    expect(p.negative_prompt).toBe('lowres, bad hands');
    expect(p.values['Sampler']).toBe('Euler a');
    expect(p.values['Lora hashes']).toBe('a: 1, b: 2');
    expect(p.params).toEqual({ steps: 20, cfg_scale: 7, width: 512, height: 768 });
    expect(p.seed).toBe(42);
    expect(p.model).toBeUndefined(); // not a nightshift model
    expect(parseParameters('just a prompt')).toMatchObject({
      prompt: 'just a prompt',
      negative_prompt: null,
      values: {},
    });
  });
});

describe('saveImage and findExistingImage', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('nightshift-output-'));
  });
  afterEach(() => cleanup());

  it('embeds parameters with the returned seed and reports the bytes written', async () => {
    const job = makeJob({ prompt: 'sunset, "vivid"\nsecond line', negative_prompt: 'blur', seed: 1 });
    const saved = await saveImage(dir, job, tinyPng(), { seed: 999, mime: 'image/png' });
    expect(saved.file).toBe(job.file);
    const onDisk = await readFile(path.join(dir, job.file));
    expect(saved.bytes).toBe(onDisk.length);
    expect(saved.sha256).toBe(createHash('sha256').update(onDisk).digest('hex'));
    const text = readPngText(onDisk).text;
    const params = parseParameters(text['parameters']!);
    expect(params).toMatchObject({
      prompt: job.prompt,
      negative_prompt: 'blur',
      seed: 999,
      model: 'core',
      jobId: job.id,
    });
    expect(JSON.parse(text['nightshift']!)).toMatchObject({
      id: job.id,
      batch: 'test',
      model: 'core',
      seed: 999,
      params: job.params,
    });
    expect(await readdir(path.join(dir, 'images'))).toEqual([path.basename(job.file)]);
  });

  it('writes non-PNG and malformed bytes unchanged', async () => {
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
    const j1 = makeJob({ index: 1, params: { aspect_ratio: '1:1', output_format: 'jpeg' } });
    expect((await saveImage(dir, j1, jpeg, { seed: 1, mime: 'image/jpeg' })).bytes).toBe(jpeg.length);
    expect((await readFile(path.join(dir, j1.file))).equals(jpeg)).toBe(true);
    const junk = Buffer.from('not really a png');
    const j2 = makeJob({ index: 2 });
    await saveImage(dir, j2, junk, { seed: 1, mime: 'image/png' });
    expect((await readFile(path.join(dir, j2.file))).equals(junk)).toBe(true);
  });

  it('refuses a job whose file would escape the batch folder', async () => {
    const job = { ...makeJob(), file: '../escaped.png' };
    await expect(saveImage(dir, job, tinyPng(), { seed: 1, mime: 'image/png' })).rejects.toThrow(/escapes/);
  });

  it('finds a finished image only when sidecar and image agree', async () => {
    const job = makeJob();
    expect(await findExistingImage(dir, job)).toBeNull(); // nothing yet
    const saved = await saveImage(dir, job, tinyPng(), { seed: 7, mime: 'image/png' });
    const record = makeRecord({ seed: 7, ...saved }, job);
    await writeSidecar(dir, job.file, record);
    expect(await findExistingImage(dir, job)).toEqual(record);

    // A filtered image counts too; a failed one does not; another job's sidecar does not.
    await writeSidecar(dir, job.file, { ...record, status: 'filtered' });
    expect((await findExistingImage(dir, job))?.status).toBe('filtered');
    await writeSidecar(dir, job.file, { ...record, status: 'failed' });
    expect(await findExistingImage(dir, job)).toBeNull();
    await writeSidecar(dir, job.file, record);
    expect(await findExistingImage(dir, { ...job, id: 'other' })).toBeNull();

    // Same size, different content: the check compares sizes, it does not read the image.
    const abs = path.join(dir, job.file);
    const bytes = await readFile(abs);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    await writeFile(abs, bytes);
    expect(await findExistingImage(dir, job)).not.toBeNull();
  });

  it('rejects a truncated image, a missing image and a corrupt sidecar', async () => {
    const job = makeJob();
    const saved = await saveImage(dir, job, tinyPng(8, 8), { seed: 7, mime: 'image/png' });
    await writeSidecar(dir, job.file, makeRecord({ ...saved }, job));
    const abs = path.join(dir, job.file);
    await truncate(abs, saved.bytes - 10);
    expect(await findExistingImage(dir, job)).toBeNull();
    await writeFile(abs, Buffer.alloc(0));
    expect(await findExistingImage(dir, job)).toBeNull();
    await saveImage(dir, job, tinyPng(8, 8), { seed: 7, mime: 'image/png' });
    expect(await findExistingImage(dir, job)).not.toBeNull();
    await writeFile(path.join(dir, job.file.replace(/\.png$/, '.json')), '{"id": "trunc');
    expect(await findExistingImage(dir, job)).toBeNull();
  });
});
