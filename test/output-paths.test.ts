import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StorageError, UsageError } from '../src/errors.js';
import { cleanStaleTemps, writeFileAtomic } from '../src/output/atomic.js';
import { batchDir, imageFileName, resolveInBatch, sidecarPathFor, slugify } from '../src/output/paths.js';
import { tempDir } from './helpers/temp.js';

// Fault injection for writeFileAtomic: when on, writes to temp files stop halfway with an
// errno, as a disk filling up does. (Tests run as root, so permissions cannot make writes fail.)
const fault = vi.hoisted(() => ({ code: null as string | null }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof orig.open = async (...args) => {
    const fh = await orig.open(...args);
    const code = fault.code;
    if (code === null || !String(args[0]).endsWith('.tmp')) return fh;
    return new Proxy(fh, {
      get(target, prop) {
        if (prop === 'writeFile') {
          return async (data: Buffer | string) => {
            const buf = Buffer.from(data);
            await target.write(buf, 0, Math.floor(buf.length / 2));
            throw Object.assign(new Error(`${code}: simulated failure, write`), { code, syscall: 'write' });
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return { ...orig, open, default: { ...orig, open } };
});

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;

describe('slugify', () => {
  it('lower-cases and joins words with dashes', () => {
    expect(slugify('A Cat on a Roof!')).toBe('a-cat-on-a-roof');
    expect(slugify('  anime sunset, vivid colors,  by the sea  ')).toBe('anime-sunset-vivid-colors-by-the-sea');
  });
  it('strips diacritics and transliterates common letters', () => {
    expect(slugify('Café déjà vu à Zürich')).toBe('cafe-deja-vu-a-zurich');
    expect(slugify('Straße Ærø Łódź')).toBe('strasse-aero-lodz');
    expect(slugify('ＦＵＬＬＷＩＤＴＨ ①')).toBe('fullwidth-1');
  });
  it('falls back to "prompt" when nothing ASCII is left', () => {
    expect(slugify('')).toBe('prompt');
    expect(slugify('   ')).toBe('prompt');
    expect(slugify('🌅🎨✨')).toBe('prompt');
    expect(slugify('夕焼けの海')).toBe('prompt');
    expect(slugify('---...///')).toBe('prompt');
  });
  it('drops emoji and keeps the words around them', () => {
    expect(slugify('sunset 🌅 over the sea 🌊')).toBe('sunset-over-the-sea');
  });
  it('neutralises path separators, dots and reserved characters', () => {
    expect(slugify('../../etc/passwd')).toBe('etc-passwd');
    expect(slugify('..\\..\\windows\\system32')).toBe('windows-system32');
    expect(slugify('C:\\a:b*c?d"e<f>g|h')).toBe('c-a-b-c-d-e-f-g-h');
    expect(slugify('..')).toBe('prompt');
    expect(slugify('a\0b\nc\td')).toBe('a-b-c-d');
  });
  it('keeps very long prompts short, cutting at a word boundary', () => {
    const long = 'masterpiece best quality '.repeat(500);
    const s = slugify(long);
    expect(s.length).toBeLessThanOrEqual(40);
    expect(s).toMatch(SLUG);
    expect(s).toBe('masterpiece-best-quality-masterpiece');
    expect(slugify('x'.repeat(10_000))).toBe('x'.repeat(40));
    expect(slugify('a b c d e', 3)).toBe('a-b');
  });
  it('always yields a safe slug for arbitrary input', () => {
    const alphabet = ['a', 'Z', '9', ' ', '-', '.', '/', '\\', ':', '\0', 'é', '🌅', '夕', '\u0301', '_', '"', '\n'];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let n = 0; n < 2000; n++) {
      const len = Math.floor(rnd() * 80);
      let s = '';
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const slug = slugify(s);
      expect(slug).toMatch(SLUG);
      expect(slug.length).toBeLessThanOrEqual(40);
    }
  });
});

describe('image and sidecar names', () => {
  it('builds images/<index:05>-<slug>-<id8>.<ext>', () => {
    expect(imageFileName(1, 'Anime sunset, vivid', 'deadbeef', 'png')).toBe(
      'images/00001-anime-sunset-vivid-deadbeef.png',
    );
    expect(imageFileName(123456, '🌅', '0123abcd', 'jpg')).toBe('images/123456-prompt-0123abcd.jpg');
  });
  it('refuses an id or extension that could carry a path', () => {
    expect(() => imageFileName(1, 'p', '../x', 'png')).toThrow();
    expect(() => imageFileName(1, 'p', 'deadbeef', 'png/../x')).toThrow();
    expect(() => imageFileName(-1, 'p', 'deadbeef', 'png')).toThrow();
  });
  it('puts the sidecar next to the image', () => {
    expect(sidecarPathFor('images/00001-a-deadbeef.png')).toBe('images/00001-a-deadbeef.json');
    expect(sidecarPathFor('images/00001-a.b-deadbeef.webp')).toBe('images/00001-a.b-deadbeef.json');
  });
});

const REAL = 'https://api.stability.ai';
const real = (batch: string) => ({ api: REAL, batch });

describe('batch folder containment', () => {
  it('resolves a batch folder under out', () => {
    expect(batchDir('/tmp/out', real('anime-sunset_2.v1'))).toBe(path.resolve('/tmp/out/anime-sunset_2.v1'));
  });
  it('puts mock batches in their own folder, and keeps that name from real batches', () => {
    expect(batchDir('/tmp/out', { api: 'mock', batch: 'x' })).toBe(path.resolve('/tmp/out/mock/x'));
    expect(batchDir('/tmp/out', { api: 'mock', batch: 'mock' })).toBe(path.resolve('/tmp/out/mock/mock'));
    expect(() => batchDir('/tmp/out', real('mock'))).toThrow(UsageError);
    expect(() => batchDir('/tmp/out', real('mock'))).toThrow(/--batch: "mock"/);
  });
  it.each(['', '.', '..', 'a/b', '../x', '/etc', 'a\\b', 'a\0b', 'C:x', 'x'.repeat(300), 'a\nb'])(
    'refuses the batch name %j',
    (name) => {
      expect(() => batchDir('/tmp/out', real(name))).toThrow(/invalid batch name/);
      expect(() => batchDir('/tmp/out', { api: 'mock', batch: name })).toThrow(/invalid batch name/);
    },
  );
  it('accepts paths inside the batch folder only', () => {
    const dir = '/tmp/out/b';
    expect(resolveInBatch(dir, 'images/x.png')).toBe(path.resolve('/tmp/out/b/images/x.png'));
    expect(resolveInBatch(dir, 'images/../manifest.jsonl')).toBe(path.resolve('/tmp/out/b/manifest.jsonl'));
    for (const bad of [
      '',
      '.',
      'images/..',
      '..',
      '../c/x.png',
      'images/../../x',
      '/etc/passwd',
      'a\\..\\..\\x',
      'C:\\x',
      'images/\0x',
    ]) {
      expect(() => resolveInBatch(dir, bad), bad).toThrow(/escapes the batch folder/);
    }
  });
  it('keeps every image inside <batch>/images whatever the prompt says', () => {
    const dir = batchDir('/tmp/out', real('b'));
    for (const prompt of [
      '../../../etc/passwd',
      '/abs/olute',
      '..\\..\\x',
      'a/../../b',
      '\0',
      '~/.ssh/id_rsa',
      '.'.repeat(50),
    ]) {
      const abs = resolveInBatch(dir, imageFileName(7, prompt, 'deadbeef', 'png'));
      expect(path.dirname(abs)).toBe(path.join(dir, 'images'));
    }
  });
});

describe('writeFileAtomic', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('nightshift-output-'));
  });
  afterEach(async () => {
    fault.code = null;
    await cleanup();
  });

  it('writes, replaces, creates parent folders and leaves no temp file', async () => {
    const target = path.join(dir, 'a', 'b', 'file.txt');
    await writeFileAtomic(target, 'first');
    await writeFileAtomic(target, Buffer.from('second'), { fsync: false });
    expect(await readFile(target, 'utf8')).toBe('second');
    expect(await readdir(path.dirname(target))).toEqual(['file.txt']);
  });

  it('fails with a StorageError carrying the errno when the folder is under a file (ENOTDIR)', async () => {
    await writeFile(path.join(dir, 'plain'), 'x');
    const target = path.join(dir, 'plain', 'sub', 'img.png');
    const err = await writeFileAtomic(target, 'data').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).fsCode).toBe('ENOTDIR');
    expect((err as StorageError).errorClass).toBe('storage');
    expect((err as StorageError).message).toContain(path.join(dir, 'plain', 'sub'));
  });

  it('never leaves a partial target when the disk fills mid-write (ENOSPC)', async () => {
    const target = path.join(dir, 'img.png');
    await writeFileAtomic(target, 'old complete content');
    fault.code = 'ENOSPC';
    const err = await writeFileAtomic(target, Buffer.alloc(4096, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).fsCode).toBe('ENOSPC');
    expect((err as StorageError).message).toContain(target);
    expect(await readFile(target, 'utf8')).toBe('old complete content');
    expect(await readdir(dir)).toEqual(['img.png']);
  });

  it.each(['EDQUOT', 'EROFS', 'EIO'])('keeps the %s code', async (code) => {
    fault.code = code;
    const target = path.join(dir, 'new.png');
    const err = await writeFileAtomic(target, 'data').catch((e: unknown) => e);
    expect((err as StorageError).fsCode).toBe(code);
    expect(await readdir(dir)).toEqual([]);
  });

  it('removes the temp file when the rename fails (target is a folder)', async () => {
    const target = path.join(dir, 'taken');
    await mkdir(path.join(target, 'inner'), { recursive: true });
    const err = await writeFileAtomic(target, 'data').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(['EISDIR', 'ENOTEMPTY', 'EEXIST']).toContain((err as StorageError).fsCode);
    expect(await readdir(dir)).toEqual(['taken']);
    expect((await stat(target)).isDirectory()).toBe(true);
  });

  it.skipIf(process.getuid?.() === 0)('reports EACCES in a read-only folder (not testable as root)', async () => {
    const ro = path.join(dir, 'ro');
    await mkdir(ro, { mode: 0o555 });
    const err = await writeFileAtomic(path.join(ro, 'x'), 'data').catch((e: unknown) => e);
    expect((err as StorageError).fsCode).toBe('EACCES');
  });

  it('cleanStaleTemps removes only old temp files', async () => {
    const old = path.join(dir, '.img.png.123.abcdef.tmp');
    const young = path.join(dir, '.img2.png.123.abcdef.tmp');
    await writeFile(old, 'x');
    await writeFile(young, 'x');
    await writeFile(path.join(dir, 'keep.tmp'), 'x'); // not ours: no leading dot
    await writeFile(path.join(dir, '.hidden'), 'x');
    const past = new Date(Date.now() - 2 * 3600_000);
    await utimes(old, past, past);
    expect(await cleanStaleTemps(dir, 3600_000)).toBe(1);
    expect((await readdir(dir)).sort()).toEqual(['.hidden', '.img2.png.123.abcdef.tmp', 'keep.tmp']);
    expect(await cleanStaleTemps(path.join(dir, 'missing'), 0)).toBe(0);
  });
});
