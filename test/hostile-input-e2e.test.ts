/**
 * Local input is bounded, through the real `enqueue`: every hostile file below is refused (exit 2,
 * naming it) within 5 s and 300 MB of peak RSS. Each used to hang, exhaust memory or take a minute:
 * a FIFO hung for ever, /dev/zero grew 1.5 GB in 6 s, a 200 KB parameters chunk took 51 s, a
 * zTXt bomb inflated to gigabytes, a 5-million-line file took 19 s and 1.08 GB, nested JSON overflowed
 * the stack (exit 1). The bounds are a hang detector with a wide margin, not a speed test: the
 * figures are printed for the record.
 */
import { createWriteStream } from 'node:fs';
import { symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { longParametersPng, mkfifo, zTXtBombPng } from './helpers/hostile-files.js';
import { runMeasured } from './helpers/measure.js';

/**
 * A hang detector, not a speed test: each case takes about 1 s on an idle machine (the figures are
 * printed; bench/ measures speed). Before the fix these hung or ran for a minute and more.
 */
const MAX_SECONDS = 30;
const MAX_MIB = 300;

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.cleanup();
});

/** `lines` short prompts (~9 bytes a line), written as a stream: 5 million make some 45 MB. */
async function longFile(file: string, lines: number): Promise<void> {
  const w = createWriteStream(file);
  const step = 100_000;
  for (let i = 0; i < lines; i += step) {
    const chunk = Array.from({ length: Math.min(step, lines - i) }, (_, k) => `p${i + k}\n`).join('');
    if (!w.write(chunk)) await new Promise<void>((r) => w.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => w.end((err?: Error | null) => (err ? j(err) : r())));
}

const cases: Array<{ name: string; make: (dir: string) => Promise<string>; expect: RegExp }> = [
  {
    name: 'a symlink to /dev/zero',
    make: async (dir) => {
      const f = join(dir, 'zero.txt');
      await symlink('/dev/zero', f);
      return f;
    },
    expect: /zero\.txt:0: file: is a character device, not a regular file/,
  },
  {
    name: 'a FIFO nobody writes to',
    make: async (dir) => {
      const f = join(dir, 'pipe.txt');
      mkfifo(f);
      return f;
    },
    expect: /pipe\.txt:0: file: is a FIFO \(named pipe\), not a regular file/,
  },
  {
    name: 'a symlink to a FIFO',
    make: async (dir) => {
      const fifo = join(dir, 'pipe2');
      mkfifo(fifo);
      const f = join(dir, 'to-pipe.jsonl');
      await symlink(fifo, f);
      return f;
    },
    expect: /to-pipe\.jsonl:0: file: is a FIFO/,
  },
  {
    name: 'a PNG with a 200 KB parameters chunk',
    make: async (dir) => {
      const f = join(dir, 'long-params.png');
      await writeFile(f, longParametersPng(200_000));
      return f;
    },
    expect: /long-params\.png:0: seed: the parameters text chunk has no Seed/,
  },
  {
    name: 'a zTXt-bomb PNG (1 MB inflating to 1 GiB)',
    make: async (dir) => {
      const f = join(dir, 'bomb.png');
      await writeFile(f, await zTXtBombPng(1024));
      return f;
    },
    expect: /bomb\.png:0: parameters: the parameters text chunk is larger than nightshift reads/,
  },
  {
    name: 'a 5-million-line prompt file',
    make: async (dir) => {
      const f = join(dir, 'five-million.txt');
      await longFile(f, 5_000_000);
      return f;
    },
    expect:
      /would make at least 10001 prompts .* more than the limit of 10000 \(counting stopped at .*five-million\.txt:10001\)/,
  },
  {
    name: 'a JSON line nested 100,000 deep',
    make: async (dir) => {
      const f = join(dir, 'nested.jsonl');
      await writeFile(f, `{"prompt":"fine"}\n{"prompt":${'['.repeat(100_000)}${']'.repeat(100_000)}}\n`);
      return f;
    },
    expect: /nested\.jsonl:2: prompt: nests deeper than 32 levels/,
  },
];

describe('enqueue refuses hostile local input quickly and in bounded memory', () => {
  for (const c of cases) {
    it(`refuses ${c.name}`, async () => {
      const file = await c.make(tmp.dir);
      // A good file beside it: its problems (none) must not hide the bad one's, nor the reverse.
      const good = join(tmp.dir, 'good.txt');
      await writeFile(good, 'a lighthouse at dusk\n');
      const r = await runMeasured(['enqueue', '--dry-run', '--mock', file, good], cliEnv({}));
      console.log(`${c.name}: exit ${r.code}, ${r.seconds.toFixed(2)} s, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(c.expect);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
      expect(r.seconds).toBeLessThan(MAX_SECONDS);
      expect(r.peakMiB).toBeLessThan(MAX_MIB);
    });
  }
});
