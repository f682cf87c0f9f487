import { describe, expect, it } from 'vitest';
import { PromptFileError } from '../src/errors.js';
import { loadPromptFilesOrThrow } from '../src/prompts/load.js';
import type { GenerationDefaults } from '../src/prompts/types.js';
import { jsonl, useFixtures } from './prompts-helpers.js';

const fx = useFixtures();
const V1 = 'stable-diffusion-v1-6';
const XL = 'stable-diffusion-xl-1024-v1-0';

/** Loads one JSONL line and returns the formatted problems with the file path cut off. */
async function problemsOf(row: object, defaults: GenerationDefaults = {}): Promise<string[]> {
  const r = await fx.load('p.jsonl', jsonl(row), defaults);
  return r.messages.map((m) => m.slice(r.file.length + 1));
}

async function specOf(row: object, defaults: GenerationDefaults = {}) {
  const r = await fx.load('p.jsonl', jsonl(row), defaults);
  expect(r.messages).toEqual([]);
  return r.specs[0]!;
}

describe('row types and ranges', () => {
  it('prompt must not be empty after trimming', async () => {
    expect(await problemsOf({ prompt: '   ' })).toEqual(['1: prompt: must not be empty']);
  });

  it('prompt is at most 10000 characters', async () => {
    expect(await problemsOf({ prompt: 'x'.repeat(10001) })).toEqual([
      '1: prompt: must be at most 10000 characters (got 10001)',
    ]);
    expect((await specOf({ prompt: 'x'.repeat(10000) })).prompt).toHaveLength(10000);
  });

  it('prompt must be a string', async () => {
    expect(await problemsOf({ prompt: 5 })).toEqual(['1: prompt: must be a string (got 5)']);
  });

  it('id must be safe for job ids and file names', async () => {
    expect(await problemsOf({ prompt: 'a', id: '../etc' })).toEqual([
      `1: id: must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit (got "../etc")`,
    ]);
    expect(await problemsOf({ prompt: 'a', id: 'a'.repeat(65) })).toHaveLength(1);
    expect((await specOf({ prompt: 'a', id: 'Shot_01.v2-b' })).id).toBe('Shot_01.v2-b');
  });

  it('negative_prompt is at most 10000 characters', async () => {
    expect(await problemsOf({ prompt: 'a', negative_prompt: 'n'.repeat(10001) })).toEqual([
      '1: negative_prompt: must be at most 10000 characters (got 10001)',
    ]);
  });

  it('model must be a known model', async () => {
    expect(await problemsOf({ prompt: 'a', model: 'sdxl' })).toEqual([
      '1: model: must be one of core, ultra, sd3.5-large, sd3.5-large-turbo, sd3.5-medium, sd3.5-flash, stable-diffusion-v1-6, stable-diffusion-xl-1024-v1-0 (got "sdxl")',
    ]);
  });

  it('seed is an integer 0..4294967295', async () => {
    const msg = 'must be an integer between 0 and 4294967295';
    expect(await problemsOf({ prompt: 'a', seed: -1, model: V1 })).toEqual([`1: seed: ${msg} (got -1)`]);
    expect(await problemsOf({ prompt: 'a', seed: 1.5 })).toEqual([`1: seed: ${msg} (got 1.5)`]);
    expect(await problemsOf({ prompt: 'a', seed: 4294967296, model: V1 })).toEqual([
      `1: seed: ${msg} (got 4294967296)`,
    ]);
    expect(await problemsOf({ prompt: 'a', seed: '7' })).toEqual([`1: seed: ${msg} (got "7")`]);
  });

  it('samples is an integer 1..100', async () => {
    const msg = 'must be an integer between 1 and 100';
    expect(await problemsOf({ prompt: 'a', samples: 0 })).toEqual([`1: samples: ${msg} (got 0)`]);
    expect(await problemsOf({ prompt: 'a', samples: 101 })).toEqual([`1: samples: ${msg} (got 101)`]);
    expect(await problemsOf({ prompt: 'a', samples: 2.5 })).toEqual([`1: samples: ${msg} (got 2.5)`]);
    expect((await specOf({ prompt: 'a', samples: 100 })).samples).toBe(100);
  });

  it('aspect_ratio, style_preset and output_format are enums', async () => {
    expect(await problemsOf({ prompt: 'a', aspect_ratio: '4:3' })).toEqual([
      '1: aspect_ratio: must be one of 21:9, 16:9, 3:2, 5:4, 1:1, 4:5, 2:3, 9:16, 9:21 (got "4:3")',
    ]);
    const style = await problemsOf({ prompt: 'a', style_preset: 'watercolor' });
    expect(style).toHaveLength(1);
    expect(style[0]).toMatch(/^1: style_preset: must be one of enhance, anime, .*tile-texture \(got "watercolor"\)$/);
    expect(await problemsOf({ prompt: 'a', output_format: 'gif' })).toEqual([
      '1: output_format: must be one of png, jpeg, webp (got "gif")',
    ]);
  });

  it('width, height and steps are positive integers', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, width: 512.5 })).toEqual([
      '1: width: must be a positive integer (got 512.5)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, height: -64 })).toEqual([
      '1: height: must be a positive integer (got -64)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, steps: '30' })).toEqual([
      '1: steps: must be a positive integer (got "30")',
    ]);
  });

  it('cfg_scale is a number', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, cfg_scale: 'high' })).toEqual([
      '1: cfg_scale: must be a number (got "high")',
    ]);
  });
});

describe('parameters the model does not take', () => {
  it('is an error, never silently dropped', async () => {
    expect(await problemsOf({ prompt: 'a', width: 1024 })).toEqual([
      '1: width: not accepted by model core (it takes aspect_ratio, style_preset, output_format)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: 'ultra', cfg_scale: 5 })).toEqual([
      '1: cfg_scale: not accepted by model ultra (it takes aspect_ratio, style_preset, output_format)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: 'sd3.5-large', steps: 30 })).toEqual([
      '1: steps: not accepted by model sd3.5-large (it takes cfg_scale, aspect_ratio, style_preset, output_format)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, aspect_ratio: '1:1' })).toEqual([
      `1: aspect_ratio: not accepted by model ${V1} (it takes width, height, steps, cfg_scale, style_preset)`,
    ]);
  });

  it('says when the value came from a CLI default', async () => {
    expect(await problemsOf({ prompt: 'a' }, { width: 1024 })).toEqual([
      '1: width: not accepted by model core (it takes aspect_ratio, style_preset, output_format) (set by --width)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1 }, { aspect_ratio: '16:9' })).toEqual([
      `1: aspect_ratio: not accepted by model ${V1} (it takes width, height, steps, cfg_scale, style_preset) (set by --aspect-ratio)`,
    ]);
  });

  it('the line overrides the CLI default model', async () => {
    const spec = await specOf({ prompt: 'a', model: 'core' }, { model: V1 });
    expect(spec.model).toBe('core');
  });

  it('output_format: v1 engines accept png only', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, output_format: 'jpeg' })).toEqual([
      `1: output_format: not accepted by model ${V1} (v1 engines return PNG only; use png or leave it unset)`,
    ]);
    expect(await problemsOf({ prompt: 'a', model: XL }, { output_format: 'webp' })).toEqual([
      `1: output_format: not accepted by model ${XL} (v1 engines return PNG only; use png or leave it unset) (set by --format)`,
    ]);
    expect((await specOf({ prompt: 'a', model: V1, output_format: 'png' })).params.output_format).toBe('png');
  });
});

describe('v1 rules', () => {
  it('prompt is at most 2000 characters', async () => {
    expect(await problemsOf({ prompt: 'x'.repeat(2001), model: V1 })).toEqual([
      `1: prompt: must be at most 2000 characters for model ${V1} (got 2001)`,
    ]);
    await specOf({ prompt: 'x'.repeat(2000), model: V1 });
    await specOf({ prompt: 'x'.repeat(2001), model: 'core' });
  });

  it('negative_prompt is at most 2000 characters', async () => {
    expect(await problemsOf({ prompt: 'a', negative_prompt: 'n'.repeat(2001), model: XL })).toEqual([
      `1: negative_prompt: must be at most 2000 characters for model ${XL} (got 2001)`,
    ]);
    await specOf({ prompt: 'a', negative_prompt: 'n'.repeat(2001), model: 'core' });
  });

  it('steps 10–50', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, steps: 9 })).toEqual([
      `1: steps: must be between 10 and 50 for model ${V1} (got 9)`,
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, steps: 51 })).toHaveLength(1);
    expect((await specOf({ prompt: 'a', model: V1, steps: 50 })).params.steps).toBe(50);
    expect((await specOf({ prompt: 'a', model: V1, steps: 10 })).params.steps).toBe(10);
  });

  it('cfg_scale 0–35', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, cfg_scale: 35.5 })).toEqual([
      `1: cfg_scale: must be between 0 and 35 for model ${V1} (got 35.5)`,
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, cfg_scale: -1 })).toHaveLength(1);
    expect((await specOf({ prompt: 'a', model: V1, cfg_scale: 0 })).params.cfg_scale).toBe(0);
    expect((await specOf({ prompt: 'a', model: V1, cfg_scale: 35 })).params.cfg_scale).toBe(35);
  });

  it('width and height are multiples of 64', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, width: 1000 })).toEqual([
      `1: width: must be a multiple of 64 for model ${V1} (got 1000)`,
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1 }, { height: 700 })).toEqual([
      `1: height: must be a multiple of 64 for model ${V1} (got 700) (set by --height)`,
    ]);
  });

  it('SD 1.6: each side 320–1536', async () => {
    expect(await problemsOf({ prompt: 'a', model: V1, width: 256 })).toEqual([
      `1: width: must be between 320 and 1536 for model ${V1} (got 256)`,
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, height: 1600 })).toEqual([
      `1: height: must be between 320 and 1536 for model ${V1} (got 1600)`,
    ]);
    expect((await specOf({ prompt: 'a', model: V1, width: 320, height: 1536 })).params).toMatchObject({
      width: 320,
      height: 1536,
    });
  });

  it('SDXL: width×height must be one of the fixed sizes', async () => {
    const sizes = '1024x1024, 1152x896, 896x1152, 1216x832, 832x1216, 1344x768, 768x1344, 1536x640, 640x1536';
    expect(await problemsOf({ prompt: 'a', model: XL, width: 1024, height: 768 })).toEqual([
      `1: width: 1024x768 is not a size ${XL} accepts; use one of ${sizes}`,
    ]);
    expect((await specOf({ prompt: 'a', model: XL, width: 1152, height: 896 })).params).toMatchObject({
      width: 1152,
      height: 896,
    });
  });

  it('SDXL: a single side is paired with the default 1024 and checked', async () => {
    expect(await problemsOf({ prompt: 'a', model: XL, width: 1152 })).toEqual([
      expect.stringContaining(`1: width: 1152x1024 is not a size ${XL} accepts`),
    ]);
    expect(await problemsOf({ prompt: 'a', model: XL, height: 640 })).toEqual([
      expect.stringContaining(`1: height: 1024x640 is not a size ${XL} accepts`),
    ]);
    expect(await problemsOf({ prompt: 'a', model: XL }, { width: 1536 })).toEqual([
      expect.stringMatching(/^1: width: 1536x1024 is not a size .* \(set by --width\)$/),
    ]);
  });

  it('fills in the v1 defaults of the original script', async () => {
    expect((await specOf({ prompt: 'a', model: XL })).params).toEqual({
      cfg_scale: 7,
      width: 1024,
      height: 1024,
      steps: 30,
      output_format: 'png',
    });
  });
});

describe('sd3.5 rules', () => {
  it('cfg_scale 1–10', async () => {
    expect(await problemsOf({ prompt: 'a', model: 'sd3.5-medium', cfg_scale: 0.5 })).toEqual([
      '1: cfg_scale: must be between 1 and 10 for model sd3.5-medium (got 0.5)',
    ]);
    expect(await problemsOf({ prompt: 'a', model: 'sd3.5-flash' }, { cfg_scale: 11 })).toEqual([
      '1: cfg_scale: must be between 1 and 10 for model sd3.5-flash (got 11) (set by --cfg-scale)',
    ]);
    expect((await specOf({ prompt: 'a', model: 'sd3.5-large', cfg_scale: 10 })).params).toEqual({
      cfg_scale: 10,
      aspect_ratio: '1:1',
      output_format: 'png',
    });
  });
});

describe('seeds', () => {
  it('v2beta seeds go up to 4294967294, v1 seeds to 4294967295', async () => {
    expect(await problemsOf({ prompt: 'a', seed: 4294967295 })).toEqual([
      '1: seed: must be at most 4294967294 for model core (got 4294967295)',
    ]);
    expect((await specOf({ prompt: 'a', seed: 4294967294 })).seed).toBe(4294967294);
    expect((await specOf({ prompt: 'a', seed: 4294967295, model: V1 })).seed).toBe(4294967295);
  });

  it('seed + samples - 1 must not pass the maximum', async () => {
    expect(await problemsOf({ prompt: 'a', seed: 4294967290, samples: 10 })).toEqual([
      '1: seed: with samples 10 would use seeds up to 4294967299; the maximum for model core is 4294967294',
    ]);
    expect(await problemsOf({ prompt: 'a', model: V1, samples: 2 }, { seed: 4294967295 })).toEqual([
      `1: seed: with samples 2 would use seeds up to 4294967296; the maximum for model ${V1} is 4294967295 (set by --seed)`,
    ]);
    expect((await specOf({ prompt: 'a', seed: 4294967285, samples: 10 })).samples).toBe(10);
  });

  it('seed and samples come from the line, else the CLI, else null and 1', async () => {
    expect(await specOf({ prompt: 'a' })).toMatchObject({ seed: null, samples: 1 });
    expect(await specOf({ prompt: 'a' }, { seed: 9, samples: 3 })).toMatchObject({ seed: 9, samples: 3 });
    expect(await specOf({ prompt: 'a', seed: 1, samples: 2 }, { seed: 9, samples: 3 })).toMatchObject({
      seed: 1,
      samples: 2,
    });
  });
});

describe('CLI defaults', () => {
  it('a bad default is a problem on "<command line>" naming the flag', async () => {
    const r = await fx.load('p.txt', 'a\n', { samples: 0, model: 'nope' as never, cfg_scale: Number.NaN });
    expect(r.messages).toEqual([
      '<command line>:0: --model: must be one of core, ultra, sd3.5-large, sd3.5-large-turbo, sd3.5-medium, sd3.5-flash, stable-diffusion-v1-6, stable-diffusion-xl-1024-v1-0 (got "nope")',
      '<command line>:0: --samples: must be an integer between 1 and 100 (got 0)',
      '<command line>:0: --cfg-scale: must be a number (got NaN)',
    ]);
    expect(r.specs).toEqual([]);
  });

  it('applies the negative prompt default', async () => {
    expect((await specOf({ prompt: 'a' }, { negative_prompt: 'blurry' })).negative_prompt).toBe('blurry');
  });
});

describe('ids', () => {
  it('a repeated id is an error', async () => {
    const r = await fx.load('p.jsonl', jsonl({ prompt: 'a', id: 'x' }, { prompt: 'b', id: 'x' }));
    expect(r.messages).toEqual([`${r.file}:2: id: duplicate id "x" (first used at ${r.file}:1)`]);
  });

  it('a line with variants holds its id too: another line may not reuse it', async () => {
    const after = await fx.load(
      'a.jsonl',
      jsonl({ prompt: 'a {red|blue} cat', id: 'x' }, { prompt: 'a dog', id: 'x' }),
    );
    expect(after.messages).toEqual([`${after.file}:2: id: duplicate id "x" (first used at ${after.file}:1)`]);
    const before = await fx.load(
      'b.jsonl',
      jsonl({ prompt: 'a dog', id: 'x' }, { prompt: 'a {red|blue} cat', id: 'x' }),
    );
    expect(before.messages).toEqual([`${before.file}:2: id: duplicate id "x" (first used at ${before.file}:1)`]);
    const fine = await fx.load('c.jsonl', jsonl({ prompt: 'a {red|blue} cat', id: 'x' }, { prompt: 'a dog', id: 'y' }));
    expect(fine.messages).toEqual([]);
    expect(fine.specs.map((s) => s.id)).toEqual(['x.1', 'x.2', 'y']);
  });
});

describe('loadPromptFilesOrThrow', () => {
  it('throws PromptFileError listing file:line: field: problem', async () => {
    const file = await fx.write('p.jsonl', jsonl({ prompt: 'a' }, { prompt: 'b', width: 64 }));
    const err = await loadPromptFilesOrThrow([file], {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PromptFileError);
    expect((err as PromptFileError).exitCode).toBe(2);
    expect((err as PromptFileError).message).toBe(
      `${file}:2: width: not accepted by model core (it takes aspect_ratio, style_preset, output_format)`,
    );
  });

  it('returns the specs when the files are fine', async () => {
    const file = await fx.write('p.txt', 'a\nb\n');
    const { specs, lines } = await loadPromptFilesOrThrow([file], {});
    expect(specs.map((s) => s.prompt)).toEqual(['a', 'b']);
    expect(lines).toBe(2);
  });
});
