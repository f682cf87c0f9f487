/** Local input is bounded: only regular files, read a chunk at a time, no unbounded parse. */
import { execFileSync } from 'node:child_process';
import { appendFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PromptFileError, formatProblem } from '../src/errors.js';
import { loadPromptFiles, promptSpecChunks, validatePromptFiles } from '../src/prompts/load.js';
import { openRegularFile } from '../src/regular-file.js';
import { readLines } from '../src/prompts/lines.js';
import { jsonl, useFixtures } from './prompts-helpers.js';

const fx = useFixtures();

async function fifo(name: string): Promise<string> {
  const file = await fx.write(`${name}.placeholder`, '');
  const path = file.replace(/\.placeholder$/, '');
  execFileSync('mkfifo', [path]);
  return path;
}

describe('only regular files are read', () => {
  it('refuses a FIFO at once, naming it (nothing ever writes to it: a blocking open would hang)', async () => {
    const path = await fifo('pipe.txt');
    const res = await loadPromptFiles([path], {});
    expect(res.problems.map(formatProblem)).toEqual([`${path}:0: file: is a FIFO (named pipe), not a regular file`]);
  });

  it('refuses a symlink to a FIFO and one to /dev/zero', async () => {
    const pipe = await fifo('pipe');
    const toPipe = join(pipe, '..', 'to-pipe.jsonl');
    await symlink(pipe, toPipe);
    const toZero = join(pipe, '..', 'zero.csv');
    await symlink('/dev/zero', toZero);
    const res = await loadPromptFiles([toPipe, toZero], {});
    expect(res.problems.map(formatProblem)).toEqual([
      `${toPipe}:0: file: is a FIFO (named pipe), not a regular file`,
      `${toZero}:0: file: is a character device, not a regular file`,
    ]);
  });

  it('refuses a FIFO given as a PNG or a manifest to re-run', async () => {
    const png = await fifo('image.png');
    const manifest = await fifo('manifest.jsonl');
    const res = await loadPromptFiles([png, manifest], {});
    expect(res.problems.map((p) => [p.file, p.message])).toEqual([
      [png, 'is a FIFO (named pipe), not a regular file'],
      [manifest, 'is a FIFO (named pipe), not a regular file'],
    ]);
  });

  it('follows a symlink to a regular file', async () => {
    const real = await fx.write('real.txt', 'a lighthouse\n');
    const link = join(real, '..', 'link.txt');
    await symlink(real, link);
    const res = await loadPromptFiles([link], {});
    expect(res.problems).toEqual([]);
    expect(res.specs.map((s) => s.prompt)).toEqual(['a lighthouse']);
  });

  it('stops reading a file that grows past the limit after its size was checked', async () => {
    const file = await fx.write('grows.txt', 'one\ntwo\n');
    const opened = await openRegularFile(file, { maxBytes: 100 });
    if (!opened.ok) throw new Error(opened.message);
    await appendFile(file, 'x'.repeat(500));
    const events = [];
    for await (const ev of readLines(file, opened.fh, 100)) events.push(ev);
    await opened.fh.close();
    expect(events.at(-1)).toEqual({
      problem: { file, line: 0, field: 'file', message: 'file is too large (101 bytes; the limit is 100 bytes)' },
    });
  });
});

describe('reading a chunk at a time', () => {
  // The line reader takes 256 KiB per step: these files cross that boundary.
  const STEP = 256 * 1024;

  it('decodes a character split across two reads', async () => {
    // 'é' is two bytes; 'a' × (STEP - 1) puts its first byte last in the first read.
    const text = `${'a'.repeat(5000)}\n`.repeat(Math.floor((STEP - 1) / 5001));
    const pad = STEP - 1 - Buffer.byteLength(text);
    const body = `${text}${'b'.repeat(pad)}é\nsecond é\n`;
    const r = await fx.load('split.txt', body);
    expect(r.problems).toEqual([]);
    expect(r.specs.at(-2)!.prompt).toBe(`${'b'.repeat(pad)}é`);
    expect(r.specs.at(-1)!.prompt).toBe('second é');
  });

  it('names the line of a bad byte far into the file', async () => {
    const good = 'fine prompt\n'.repeat(60_000);
    const bytes = Buffer.concat([Buffer.from(good), Buffer.from([0x61, 0xff, 0x0a]), Buffer.from('after\n')]);
    const r = await fx.load('bad-late.txt', bytes);
    expect(r.messages).toEqual([
      `${r.file}:60001: file: not valid UTF-8 (first bad byte on line 60001); save the file as UTF-8`,
    ]);
  });

  it('reads CRLF whose CR and LF fall in different reads', async () => {
    const r = await fx.load(
      'crlf.jsonl',
      `${JSON.stringify({ prompt: 'x' }).padEnd(STEP - 1, ' ')}\r\n{"prompt":"y"}\r\n`,
    );
    expect(r.problems).toEqual([]);
    expect(r.specs.map((s) => [s.line, s.prompt])).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
  });

  it('strips only a leading BOM: one later in the file is text', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const line = Buffer.from('{"prompt":"a"}\n');
    const r = await fx.load('boms.jsonl', Buffer.concat([bom, line, bom, line]));
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([[2, 'json']]);
  });

  it('reports the start line of CSV records that span many lines and cross reads', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `"row ${i}\nsecond line",${i}`).join('\n');
    const r = await fx.load('many.csv', `prompt,seed\n${rows}\n`);
    expect(r.problems).toEqual([]);
    expect(r.specs).toHaveLength(3000);
    expect(r.specs.slice(-2).map((s) => [s.line, s.seed])).toEqual([
      [5998, 2998],
      [6000, 2999],
    ]);
  });

  it('finds where an unclosed CSV quote starts after thousands of lines', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => `ok ${i},${i}`).join('\n');
    const r = await fx.load('unclosed.csv', `prompt,seed\n${rows}\n\n\n"never closed,1\nmore\nand more\n`);
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([[2504, 'csv']]);
    expect(r.problems[0]!.message).toMatch(/never closed/);
  });
});

describe('a JSON line giving a key twice', () => {
  it('is a problem naming the key, however it is spelled; a key inside a string or a nested object is not one', async () => {
    const r = await fx.load(
      'twice.jsonl',
      [
        '{"prompt":"a fox","seed":1,"seed":2}',
        '{"prompt":"an owl","se\\u0065d":1,"seed":2}',
        '{"prompt":"a \\"seed\\": 1, heron","seed":3}',
        '{"prompt":"a crow","seed":4}',
        '',
      ].join('\n'),
    );
    expect(r.problems.map((p) => [p.line, p.field, p.message])).toEqual([
      [1, 'seed', 'is given twice on this line; keep one'],
      [2, 'seed', 'is given twice on this line; keep one'],
    ]);
  });
});

describe('deeply nested JSON', () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

  it('is a problem naming file, line and field, and the other files are still checked', async () => {
    const nested = await fx.write('nested.jsonl', `{"prompt":"ok"}\n{"seed":1,"prompt":${deep(100_000)}}\n`);
    const other = await fx.write('other.jsonl', jsonl({ prompt: 'x', model: 'nope' }));
    const res = await loadPromptFiles([nested, other], {});
    expect(res.problems.map(formatProblem)).toEqual([
      `${nested}:2: prompt: nests deeper than 32 levels of JSON arrays or objects`,
      `${other}:1: model: must be one of core, ultra, sd3.5-large, sd3.5-large-turbo, sd3.5-medium, sd3.5-flash, stable-diffusion-v1-6, stable-diffusion-xl-1024-v1-0 (got "nope")`,
    ]);
  });

  it('at the top level is a json problem; 32 levels are only a type problem', async () => {
    const r = await fx.load('top.jsonl', `${deep(50)}\n{"prompt":${deep(31)}}\n`);
    expect(r.problems.map((p) => [p.line, p.field, p.message.replace(/ \(got.*/, '')])).toEqual([
      [1, 'json', 'nests deeper than 32 levels of JSON arrays or objects'],
      [2, 'prompt', 'must be a string'],
    ]);
  });

  it('a bracket inside a string is not nesting', async () => {
    const r = await fx.load('strings.jsonl', jsonl({ prompt: `${'[['.repeat(100)} "quoted" \\ done` }));
    expect(r.problems).toEqual([]);
  });

  it('in a manifest to re-run names its line and key', async () => {
    const m = await fx.write(
      'old.manifest.jsonl',
      `${JSON.stringify({ id: 'a', prompt: 'p', model: 'core', seed: 1, params: {} })}\n{"id":"b","params":${'{"x":'.repeat(1000)}1${'}'.repeat(1000)}}\n`,
    );
    const res = await loadPromptFiles([m], {});
    expect(res.problems.map(formatProblem)).toEqual([
      `${m}:2: params: nests deeper than 32 levels of JSON arrays or objects`,
    ]);
  });
});

describe('the prompt limit stops the reading', () => {
  it('refuses a long file at the line that passes the limit, without reading the rest', async () => {
    // The bad lines after the limit would each be a problem if they were read.
    const ok = Array.from({ length: 20 }, (_, i) => ({ prompt: `p${i}` }));
    const bad = Array.from({ length: 5 }, () => ({ prompt: 'x', model: 'nope' }));
    const r = await fx.load('long.jsonl', jsonl(...ok, ...bad), {}, { maxPrompts: 10 });
    expect(r.messages).toEqual([
      `${r.file}:0: prompts: would make at least 11 prompts after expanding variants, more than the limit of 10 (counting stopped at line 11)`,
    ]);
  });

  it('stops a manifest once it holds more jobs than the limit', async () => {
    const lines = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ id: `j${i}`, prompt: `p${i}`, model: 'core', seed: i, params: {} }),
    );
    const m = await fx.write('big.manifest.jsonl', `${lines.join('\n')}\n`);
    const res = await loadPromptFiles([m], {}, { maxPrompts: 20 });
    expect(res.problems.map((p) => p.field)).toEqual(['prompts']);
    expect(res.problems[0]!.message).toMatch(/more than the limit of 20/);
  });
});

describe('two passes: validate, then consume a chunk at a time', () => {
  it('validation keeps counts and problems; the second pass yields chunks of at most 1000 specs', async () => {
    const file = await fx.write('p.txt', Array.from({ length: 2500 }, (_, i) => `prompt ${i}`).join('\n'));
    const v = await validatePromptFiles([file], {});
    expect(v).toEqual({ problems: [], lines: 2500, prompts: 2500n });
    const sizes: number[] = [];
    let last = '';
    for await (const chunk of promptSpecChunks([file], {})) {
      sizes.push(chunk.length);
      last = chunk.at(-1)!.prompt;
    }
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(last).toBe('prompt 2499');
  });

  it('the second pass throws PromptFileError when a file changed after validation', async () => {
    const file = await fx.write('p.jsonl', jsonl({ prompt: 'a' }));
    expect((await validatePromptFiles([file], {})).problems).toEqual([]);
    await appendFile(file, jsonl({ prompt: 'b', model: 'nope' }));
    const err = await (async () => {
      for await (const _ of promptSpecChunks([file], {})) {
        // consumed
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PromptFileError);
    expect((err as PromptFileError).problems.map((p) => [p.line, p.field])).toEqual([[2, 'model']]);
  });
});
