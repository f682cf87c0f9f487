import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatProblem } from '../src/errors.js';
import { loadPromptFiles } from '../src/prompts/load.js';
import { jsonl, useFixtures } from './prompts-helpers.js';

const fx = useFixtures();
const ANIME =
  'Sunset Glow,Anime Kids,Adorable Features,Bright Eyes,Cheerful Expressions,Colorful Backpacks,School Uniforms,Chibi Style,Golden Hour,Warm Light,Long Shadows,Rustling Trees,Birds Flying,Distant Houses,Country Road,Walking Home,Chattering Friends,Laughing Faces,Innocent Joy,Youthful Energy';

describe('reading files', () => {
  it('reports a missing file as file:0: file: …', async () => {
    const file = `${await fx.write('x.txt', 'a')}.missing.txt`;
    const res = await loadPromptFiles([file], {});
    expect(res.problems.map(formatProblem)).toEqual([`${file}:0: file: file not found`]);
  });

  it('reports a directory', async () => {
    const file = await fx.write('a.txt', 'x');
    const dir = file.replace(/a\.txt$/, 'd.txt');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const res = await loadPromptFiles([dir], {});
    expect(res.problems).toHaveLength(1);
    expect(res.problems[0]!.message).toMatch(/directory/);
  });

  it('refuses a file larger than the limit', async () => {
    const r = await fx.load('big.txt', 'x'.repeat(200) + '\n', {}, { maxFileBytes: 100 });
    expect(r.messages).toEqual([`${r.file}:0: file: file is too large (201 bytes; the limit is 100 bytes)`]);
    expect(r.specs).toEqual([]);
  });

  it('accepts a file exactly at the limit', async () => {
    const r = await fx.load('ok.txt', 'x'.repeat(99) + '\n', {}, { maxFileBytes: 100 });
    expect(r.problems).toEqual([]);
  });

  it('refuses an empty file', async () => {
    const r = await fx.load('empty.txt', '');
    expect(r.messages).toEqual([`${r.file}:0: file: file is empty`]);
  });

  it('refuses a file of only blank and comment lines', async () => {
    const r = await fx.load('c.txt', '\n# just a comment\n   \n  # another\n');
    expect(r.messages).toEqual([`${r.file}:0: file: file has no prompts (only blank and comment lines)`]);
  });

  it('refuses a file that is not UTF-8, naming the line of the first bad byte', async () => {
    const bytes = Buffer.concat([
      Buffer.from('fine\nalso fine\nbad '),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\nok\n'),
    ]);
    const r = await fx.load('latin.txt', bytes);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ line: 3, field: 'file' });
    expect(r.messages[0]).toMatch(/latin\.txt:3: file: not valid UTF-8 \(first bad byte on line 3\)/);
  });

  it('finds a bad byte in a multi-byte sequence cut short', async () => {
    // é is C3 A9; C3 followed by a newline is invalid.
    const r = await fx.load('cut.txt', Buffer.from([0x61, 0x0a, 0xc3, 0x0a, 0x62]));
    expect(r.problems[0]).toMatchObject({ line: 2, field: 'file' });
  });

  it('strips a UTF-8 BOM', async () => {
    const r = await fx.load(
      'bom.txt',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('# head\nhello\n')]),
    );
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([[2, 'hello']]);
  });

  it('strips a BOM before a CSV header', async () => {
    const r = await fx.load(
      'bom.csv',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('prompt\nhello\n')]),
    );
    expect(r.problems).toEqual([]);
    expect(r.specs[0]?.prompt).toBe('hello');
  });

  it('refuses an unsupported extension', async () => {
    const r = await fx.load('prompts.md', 'hello\n');
    expect(r.messages).toEqual([`${r.file}:0: file: unsupported extension; use .txt, .jsonl or .csv`]);
  });
});

describe('.txt', () => {
  it('takes one trimmed prompt per line, skipping blank lines and # comments', async () => {
    const r = await fx.load('p.txt', '# header\n\n  first prompt  \n   # indented comment\na, b, c\n\tlast\n');
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([
      [3, 'first prompt'],
      [5, 'a, b, c'],
      [6, 'last'],
    ]);
    expect(r.lines).toBe(3);
  });

  it('handles CRLF line endings', async () => {
    const r = await fx.load('crlf.txt', '# c\r\none\r\n\r\ntwo\r\n');
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([
      [2, 'one'],
      [4, 'two'],
    ]);
  });

  it('fills in the model defaults', async () => {
    const r = await fx.load('p.txt', 'hello\n');
    expect(r.specs).toEqual([
      {
        source: r.file,
        line: 1,
        prompt: 'hello',
        model: 'core',
        negative_prompt: null,
        seed: null,
        samples: 1,
        params: { aspect_ratio: '1:1', output_format: 'png' },
      },
    ]);
  });
});

describe('.jsonl', () => {
  it('reads every key', async () => {
    const row = {
      id: 'a-1',
      prompt: 'p',
      negative_prompt: 'n',
      model: 'stable-diffusion-v1-6',
      seed: 5,
      samples: 2,
      width: 512,
      height: 768,
      steps: 40,
      cfg_scale: 8.5,
      style_preset: 'anime',
      output_format: 'png',
    };
    const r = await fx.load(
      'p.jsonl',
      jsonl(row, { prompt: 'q', aspect_ratio: '16:9', output_format: 'webp', style_preset: 'pixel-art' }),
    );
    expect(r.problems).toEqual([]);
    expect(r.specs[0]).toMatchObject({
      id: 'a-1',
      prompt: 'p',
      negative_prompt: 'n',
      model: 'stable-diffusion-v1-6',
      seed: 5,
      samples: 2,
      params: { width: 512, height: 768, steps: 40, cfg_scale: 8.5, style_preset: 'anime', output_format: 'png' },
    });
    expect(r.specs[1]).toMatchObject({
      model: 'core',
      params: { aspect_ratio: '16:9', output_format: 'webp', style_preset: 'pixel-art' },
    });
  });

  it('skips blank lines and keeps line numbers', async () => {
    const r = await fx.load('p.jsonl', '\n{"prompt":"a"}\n\n  \n{"prompt":"b"}\n');
    expect(r.specs.map((s) => s.line)).toEqual([2, 5]);
  });

  it('handles CRLF line endings', async () => {
    const r = await fx.load('p.jsonl', '{"prompt":"a"}\r\n{"prompt":"b"}\r\n');
    expect(r.specs.map((s) => s.prompt)).toEqual(['a', 'b']);
  });

  it('reports an unknown key, naming it as the field', async () => {
    const r = await fx.load('p.jsonl', jsonl({ prompt: 'a' }, { prompt: 'b', sampler: 'K_EULER' }));
    expect(r.messages).toEqual([
      `${r.file}:2: sampler: unknown key; expected one of prompt, id, negative_prompt, model, seed, samples, aspect_ratio, width, height, steps, cfg_scale, style_preset, output_format`,
    ]);
    expect(r.specs).toEqual([]);
  });

  it('reports invalid JSON and non-objects as field json', async () => {
    const r = await fx.load('p.jsonl', '{"prompt":"a"\n[1,2]\n"text"\n{"prompt":"ok"}\n');
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'json'],
      [2, 'json'],
      [3, 'json'],
    ]);
    expect(r.problems[0]!.message).toMatch(/^invalid JSON/);
    expect(r.problems[1]!.message).toBe('each line must be a JSON object, got an array');
  });

  it('requires prompt', async () => {
    const r = await fx.load('p.jsonl', jsonl({ seed: 1 }));
    expect(r.messages).toEqual([`${r.file}:1: prompt: is required`]);
  });

  it('treats null as unset', async () => {
    const r = await fx.load('p.jsonl', jsonl({ prompt: 'a', seed: null, negative_prompt: null }));
    expect(r.problems).toEqual([]);
    expect(r.specs[0]).toMatchObject({ seed: null, negative_prompt: null });
  });
});

describe('.csv', () => {
  it('reads quoted fields with commas and newlines, reporting the line each record starts on', async () => {
    const csv = 'prompt,seed\n"one, two",1\n"multi\nline\n\nprompt",2\n\nlast,3\n';
    const r = await fx.load('p.csv', csv);
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => [s.line, s.prompt, s.seed])).toEqual([
      [2, 'one, two', 1],
      [3, 'multi\nline\n\nprompt', 2],
      [8, 'last', 3],
    ]);
  });

  it('names the starting line of a problem in a multi-line record', async () => {
    const r = await fx.load('p.csv', 'prompt,model\nfine,core\n"spans\ntwo lines",nope\n');
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([[3, 'model']]);
  });

  it('handles CRLF, including inside quoted fields', async () => {
    const r = await fx.load('p.csv', 'prompt,seed\r\n"a\r\nb",1\r\nc,2\r\n');
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([
      [2, 'a\nb'],
      [4, 'c'],
    ]);
  });

  it('treats an empty field as unset and coerces numbers', async () => {
    const r = await fx.load(
      'p.csv',
      'prompt,negative_prompt,model,seed,samples,width,height,steps,cfg_scale\n' +
        'a,,,,,,,,\nb,n,stable-diffusion-v1-6,12,3,512,576,25,6.5\n',
    );
    expect(r.problems).toEqual([]);
    expect(r.specs[0]).toMatchObject({ model: 'core', seed: null, samples: 1, negative_prompt: null });
    expect(r.specs[1]).toMatchObject({
      model: 'stable-diffusion-v1-6',
      seed: 12,
      samples: 3,
      negative_prompt: 'n',
      params: { width: 512, height: 576, steps: 25, cfg_scale: 6.5 },
    });
  });

  it('reports a non-number in a numeric column', async () => {
    const r = await fx.load('p.csv', 'prompt,seed,cfg_scale\na,12abc,\nb,,seven\n');
    expect(r.messages).toEqual([
      `${r.file}:2: seed: must be a number (got "12abc")`,
      `${r.file}:3: cfg_scale: must be a number (got "seven")`,
    ]);
  });

  it('reports an unknown column on line 1, naming it', async () => {
    const r = await fx.load('p.csv', 'prompt,sampler\na,K_EULER\n');
    expect(r.messages[0]).toBe(
      `${r.file}:1: sampler: unknown column; expected one of prompt, id, negative_prompt, model, seed, samples, aspect_ratio, width, height, steps, cfg_scale, style_preset, output_format`,
    );
    expect(r.specs).toEqual([]);
  });

  it('accepts header names in any case', async () => {
    const r = await fx.load('p.csv', 'Prompt, Seed\na,1\n');
    expect(r.problems).toEqual([]);
    expect(r.specs[0]).toMatchObject({ prompt: 'a', seed: 1 });
  });

  it('reports a missing prompt column and a duplicate column', async () => {
    const r = await fx.load('p.csv', 'seed,seed\n1,2\n');
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'seed'],
      [1, 'prompt'],
    ]);
  });

  it('reports a record with the wrong number of fields', async () => {
    const r = await fx.load('p.csv', 'prompt,seed\na,1\nb,2,3\nc,4\n');
    expect(r.messages).toEqual([`${r.file}:3: csv: record has 3 fields but the header has 2`]);
  });

  it('reports an unclosed quote at the record where it starts', async () => {
    const r = await fx.load('p.csv', 'prompt,seed\na,1\n\n"never closed,2\nmore\n');
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([[4, 'csv']]);
    expect(r.problems[0]!.message).toMatch(/never closed/);
  });

  it('reports a header with no rows', async () => {
    const r = await fx.load('p.csv', 'prompt,seed\n');
    expect(r.problems.map((p) => p.field)).toEqual(['file']);
  });
});

describe('whole-file validation', () => {
  it('collects every problem in every file, in file and line order', async () => {
    const a = await fx.write('a.txt', 'ok\n');
    const b = await fx.write(
      'b.jsonl',
      jsonl({ prompt: 'x', model: 'nope' }, { prompt: 'y' }, { prompt: 'z', samples: 0 }),
    );
    const c = await fx.write('c.csv', 'prompt,width\nq,100\n');
    const res = await loadPromptFiles([a, b, c], {});
    expect(res.problems.map((p) => `${p.file}:${p.line}:${p.field}`)).toEqual([
      `${b}:1:model`,
      `${b}:3:samples`,
      `${c}:2:width`,
    ]);
    expect(res.specs).toEqual([]);
    expect(res.lines).toBe(5);
  });

  it('caps the list of problems', async () => {
    const r = await fx.load('many.txt', 'x\n'.repeat(1500), { samples: 1, width: 512 });
    expect(r.problems.length).toBe(1001);
    expect(r.problems.at(-1)!.message).toMatch(/stopped looking after 1000 problems/);
  });
});

describe('shipped examples in prompts/', () => {
  const dir = fileURLToPath(new URL('../prompts/', import.meta.url));

  it('load with zero problems', async () => {
    const files = ['anime-sunset.txt', 'original-script.jsonl', 'variants.csv'].map((f) => dir + f);
    const res = await loadPromptFiles(files, {});
    expect(res.problems.map(formatProblem)).toEqual([]);
  });

  it('anime-sunset.txt starts with the 20-keyword list as one prompt and has the lighthouse', async () => {
    const res = await loadPromptFiles([dir + 'anime-sunset.txt'], {});
    expect(res.specs[0]!.prompt).toBe(ANIME);
    expect(res.specs[0]!.prompt.split(',')).toHaveLength(20);
    expect(res.specs.map((s) => s.prompt)).toContain('A lighthouse on a cliff');
    expect(res.specs.length).toBeLessThanOrEqual(8);
  });

  it('original-script.jsonl reproduces the original request', async () => {
    const res = await loadPromptFiles([dir + 'original-script.jsonl'], {});
    expect(res.specs).toEqual([
      {
        source: dir + 'original-script.jsonl',
        line: 1,
        id: 'original',
        prompt: ANIME,
        model: 'stable-diffusion-v1-6',
        negative_prompt: null,
        seed: null,
        samples: 1,
        params: { cfg_scale: 7, width: 1024, height: 1024, steps: 30, output_format: 'png' },
      },
    ]);
  });

  it('variants.csv expands its {dawn|dusk} line', async () => {
    const res = await loadPromptFiles([dir + 'variants.csv'], {});
    const prompts = res.specs.map((s) => s.prompt);
    expect(prompts.some((p) => p.includes('dawn'))).toBe(true);
    expect(prompts.some((p) => p.includes('dusk'))).toBe(true);
    expect(prompts.some((p) => p.includes(','))).toBe(true);
  });
});
