/** PNG re-runs are bounded: the parameters parser is linear, compressed text inflates within limits. */
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readPngText } from '../src/metadata/png-text.js';
import { parseParameters } from '../src/metadata/parameters.js';
import { loadPromptFiles } from '../src/prompts/load.js';
import { pngChunk, tinyPng } from './output-fixtures.js';
import { useFixtures } from './prompts-helpers.js';
import { longParametersPng, zlibBomb, zTXtBombChunk, zTXtBombPng } from './helpers/hostile-files.js';

const fx = useFixtures();

/** A1111's own reading of a parameters line (its re_param with matchAll): the reference, quadratic at worst. */
function referencePairs(line: string): Record<string, string> | null {
  const re = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
  const values: Record<string, string> = {};
  let count = 0;
  let consumed = 0;
  for (const m of line.matchAll(re)) {
    if (m.index !== consumed || m[0] === '') break;
    consumed += m[0].length;
    let v = m[2]!.trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
      try {
        v = String(JSON.parse(v));
      } catch {
        // kept raw
      }
    }
    values[m[1]!.trim()] = v;
    count++;
  }
  return count >= 3 && consumed === line.length ? values : null;
}

/** A prompt line, then the line under test; values = {} when it is not read as parameters. */
function valuesOf(line: string): Record<string, string> {
  return parseParameters(`a prompt\n${line}`).values;
}

describe('the parameters parser', () => {
  it('reads every line the way the A1111 regex does (random lines of the characters that matter)', () => {
    // Pieces rather than single characters, so keys, quotes, escapes and commas meet often.
    const alphabet = ['a', 'S', ' ', 'Ke: ', 'Key 2: ', ':', ',', ', ', '"', '"', '\\', '\\"', '-', '/', '\r', 'x,y'];
    const pick = (n: number) => alphabet[n % alphabet.length]!;
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytes(1 + (i % 24));
      let line = '';
      for (const b of bytes) line += pick(b);
      // Seed some well-formed pairs so both readings often succeed.
      if (i % 3 === 0) line = `Steps: 1, Ke: "a,b", ${line}`;
      const expected = referencePairs(line) ?? {};
      expect(valuesOf(line), JSON.stringify(line)).toEqual(expected);
      checked++;
    }
    expect(checked).toBe(20_000);
  });

  it('agrees with the reference on quoted values, escapes and trailing commas', () => {
    for (const line of [
      'Steps: 30, CFG scale: 7, Seed: 123, Size: 1024x1024, Model: core',
      'Aa: "x, y", Bb: "say \\"hi\\"", Cc: 3,',
      'Aa: "open, Bb: 2, Cc: 3',
      'Aa: "x" tail, Bb: 2, Cc: 3',
      'Aa: "", Bb: 2, Cc: 3',
      'Aa: "\\', // a backslash at the very end
      'Aa: "a,\\\rb", Bb: 2, Cc: 3', // `.` does not match a line terminator, so this quote does not close
      '  Lead: 1,Tight:2 ,Last :3',
    ]) {
      expect(valuesOf(line), line).toEqual(referencePairs(line) ?? {});
    }
  });

  // A hang detector, not a speed test: at 200 KB each of these took the regex tens of seconds.
  const hostile: Array<[string, (n: number) => string]> = [
    ['one long word', (n) => 'a'.repeat(n)],
    ['pairs, then a long word', (n) => `Steps: 1, CFG scale: 7, Seed: 1, ${'a'.repeat(n)}`],
    ['words and spaces without a colon', (n) => 'ab '.repeat(n / 3)],
    ['quotes that never close', (n) => 'Ke: "a, '.repeat(n / 8)],
    ['escapes that never close', (n) => `Ke: "${'\\a'.repeat(n / 2)}`],
  ];
  for (const [what, make] of hostile) {
    it(`reads a 200 KB line of ${what} in linear time, as the regex reads a short one`, { timeout: 5000 }, () => {
      expect(valuesOf(make(2100))).toEqual(referencePairs(make(2100)) ?? {});
      expect(valuesOf(make(200_000))).toEqual({});
    });
  }
});

function zTXt(key: string, text: Buffer): Buffer {
  return pngChunk('zTXt', Buffer.concat([Buffer.from(`${key}\0\0`, 'latin1'), deflateSync(text)]));
}

describe('compressed text chunks', () => {
  it('are inflated only up to 1 MiB a chunk: a bomb is left out and named, the rest still read', async () => {
    const bomb = await zTXtBombChunk(1024); // 1 MB that inflates to 1 GiB
    const png = tinyPng(3, 2, [bomb, pngChunk('tEXt', Buffer.from('note\0small', 'latin1'))]);
    const before = process.memoryUsage().rss;
    const res = readPngText(png);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(res.text).toEqual({ note: 'small' });
    expect(res.oversized).toEqual(['parameters']);
  });

  it('a compressed iTXt bomb is left out the same way', async () => {
    const bomb = await zlibBomb(1024);
    const itxt = pngChunk('iTXt', Buffer.concat([Buffer.from('parameters\0\x01\x00\0\0', 'latin1'), bomb]));
    const res = readPngText(tinyPng(3, 2, [itxt]));
    expect(res).toEqual({ text: {}, oversized: ['parameters'] });
  });

  it('share a total budget, so many chunks just under the limit cannot add up', () => {
    const chunks = Array.from({ length: 20 }, (_, i) => zTXt(`k${i}`, Buffer.alloc(1024 * 1024 - 1, 0x62)));
    const res = readPngText(tinyPng(3, 2, chunks));
    expect(Object.keys(res.text)).toHaveLength(8);
    expect(res.oversized).toHaveLength(12);
  });

  it('a text chunk within the limits reads as before', () => {
    const png = tinyPng(3, 2, [zTXt('parameters', Buffer.from('a cat\nSteps: 1, Seed: 2, Model: core'))]);
    expect(readPngText(png).text).toEqual({ parameters: 'a cat\nSteps: 1, Seed: 2, Model: core' });
  });

  it('a PNG whose parameters chunk is a bomb is refused by file and field', async () => {
    const r = await fx.load('bomb.png', await zTXtBombPng(1024));
    expect(r.messages).toEqual([
      `${r.file}:0: parameters: the parameters text chunk is larger than nightshift reads (1 MiB); not read`,
    ]);
  });

  it('a PNG with a 200 KB parameters chunk is answered at once', { timeout: 5000 }, async () => {
    const file = await fx.write('long.png', longParametersPng(200_000));
    const res = await loadPromptFiles([file], {});
    expect(res.problems.map((p) => p.field)).toEqual(['seed']);
  });
});
