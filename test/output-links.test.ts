/** The output folder is not a path to elsewhere: nothing is written or read through a planted link. */
import { closeSync, writeSync } from 'node:fs';
import { link, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EnvironmentError, StorageError, UsageError } from '../src/errors.js';
import { writeFileAtomic } from '../src/output/atomic.js';
import { appendManifest, readManifest, rebuildFromDisk } from '../src/output/manifest.js';
import { checkBatchFolder, openLogFileSafely } from '../src/output/safe-dirs.js';
import { openOutput } from '../src/output/storage/open.js';
import { makeJob, makeRecord, writeSidecar } from './output-fixtures.js';
import { tempDir } from './helpers/temp.js';
import { mkfifo } from './helpers/hostile-files.js';

let dir: string;
let cleanup: () => Promise<void>;
/** Where a planted link points: outside the output folder. */
let elsewhere: string;
let out: string;
let batch: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('nightshift-output-'));
  elsewhere = path.join(dir, 'elsewhere');
  out = path.join(dir, 'out');
  batch = path.join(out, 'b');
  await mkdir(elsewhere, { recursive: true });
  await mkdir(batch, { recursive: true });
});
afterEach(() => cleanup());

async function plantFile(name: string, content = 'precious\n'): Promise<string> {
  const target = path.join(elsewhere, name);
  await writeFile(target, content);
  return target;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
}

describe('appending to the manifest', () => {
  it('refuses a manifest.jsonl that is a symlink, leaving its target untouched', async () => {
    const target = await plantFile('passwd');
    await symlink(target, path.join(batch, 'manifest.jsonl'));
    const err = await rejection(appendManifest(batch, makeRecord()));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).fsCode).toBe('ELOOP');
    expect((err as Error).message).toMatch(/manifest\.jsonl is a symbolic link/);
    expect(await readFile(target, 'utf8')).toBe('precious\n');
  });

  it('refuses a hard link and a FIFO at once', async () => {
    const target = await plantFile('other');
    await link(target, path.join(batch, 'manifest.jsonl'));
    expect((await rejection(appendManifest(batch, makeRecord()))) as Error).toMatchObject({
      message: expect.stringMatching(/other hard link/),
    });
    expect(await readFile(target, 'utf8')).toBe('precious\n');
    const fifoBatch = path.join(out, 'fifo');
    await mkdir(fifoBatch);
    mkfifo(path.join(fifoBatch, 'manifest.jsonl'));
    expect(await rejection(appendManifest(fifoBatch, makeRecord()))).toBeInstanceOf(StorageError);
  });

  it('refuses a batch folder that is a symlink', async () => {
    await symlink(elsewhere, path.join(out, 'linked'));
    const err = await rejection(appendManifest(path.join(out, 'linked'), makeRecord()));
    expect(err).toBeInstanceOf(StorageError);
    expect(await readdir(elsewhere)).toEqual([]);
  });
});

describe('atomic writes', () => {
  it('refuse to write into a folder that is a symlink (a planted images/)', async () => {
    await symlink(elsewhere, path.join(batch, 'images'));
    const err = await rejection(writeFileAtomic(path.join(batch, 'images', 'x.png'), 'data'));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).fsCode).toBe('ELOOP');
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('with a root, check every folder below it (a planted batch folder with a real images/ inside)', async () => {
    await mkdir(path.join(elsewhere, 'images'));
    await symlink(elsewhere, path.join(out, 'trap'));
    const target = path.join(out, 'trap', 'images', 'x.png');
    const err = await rejection(writeFileAtomic(target, 'data', { root: out }));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toContain(path.join(out, 'trap'));
    expect(await readdir(path.join(elsewhere, 'images'))).toEqual([]);
  });

  it('replace a file that is a symlink instead of writing through it', async () => {
    const target = await plantFile('victim');
    const sidecar = path.join(batch, 'images', 'x.json');
    await mkdir(path.dirname(sidecar));
    await symlink(target, sidecar);
    await writeFileAtomic(sidecar, 'ours');
    expect((await lstat(sidecar)).isFile()).toBe(true);
    expect(await readFile(sidecar, 'utf8')).toBe('ours');
    expect(await readFile(target, 'utf8')).toBe('precious\n');
  });
});

describe('a batch store under --out', () => {
  it('never writes or reads through a batch folder (or a folder above it) that is a link', async () => {
    await mkdir(path.join(elsewhere, 'images'), { recursive: true });
    await writeFile(path.join(elsewhere, 'images', '00001-x-aaaaaaaa.json'), '{"planted":true}\n');
    await writeFile(path.join(elsewhere, 'images', '00001-x-aaaaaaaa.png'), 'planted');
    await mkdir(path.join(out, 'mock'), { recursive: true });
    await symlink(elsewhere, path.join(out, 'mock', 'good'));
    const store = openOutput({ out, s3: null }).batch('mock/good');
    const refused = [
      await rejection(store.put([{ key: 'images/00002-y-bbbbbbbb.png', data: Buffer.from('paid') }])),
      await rejection(store.get('images/00001-x-aaaaaaaa.json', 1024)),
      await rejection(store.head('images/00001-x-aaaaaaaa.png')),
      await rejection(store.list('images/')),
    ];
    for (const err of refused) {
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).message).toMatch(/symbolic link/);
    }
    expect((await readdir(path.join(elsewhere, 'images'))).sort()).toEqual([
      '00001-x-aaaaaaaa.json',
      '00001-x-aaaaaaaa.png',
    ]);
  });

  it('never reads through an images/ folder that is a link, nor one planted after a first look', async () => {
    await mkdir(path.join(elsewhere, 'images'), { recursive: true });
    await writeFile(path.join(elsewhere, 'images', '00001-x-aaaaaaaa.json'), '{"planted":true}\n');
    const store = openOutput({ out, s3: null }).batch('b');
    // A first look at a real images/ folder, then the folder is swapped for a link.
    await mkdir(path.join(batch, 'images'));
    expect(await store.get('images/00001-x-aaaaaaaa.json', 1024)).toBeNull();
    await rm(path.join(batch, 'images'), { recursive: true });
    await symlink(path.join(elsewhere, 'images'), path.join(batch, 'images'));
    // A finding holds for a second: a second later by the clock (only Date is faked).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 1100);
    const refused = [
      await rejection(store.get('images/00001-x-aaaaaaaa.json', 1024)),
      await rejection(store.head('images/00001-x-aaaaaaaa.json')),
      await rejection(store.list('images/')),
    ];
    vi.useRealTimers();
    for (const err of refused) {
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).message).toMatch(/symbolic link/);
    }
  });

  it('never writes through an images/ folder swapped for a link after a first write', async () => {
    const store = openOutput({ out, s3: null }).batch('b');
    await store.put([{ key: 'images/00001-x-aaaaaaaa.png', data: Buffer.from('paid') }]);
    await rm(path.join(batch, 'images'), { recursive: true });
    await symlink(elsewhere, path.join(batch, 'images'));
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 1100);
    const err = await rejection(store.put([{ key: 'images/00002-y-bbbbbbbb.png', data: Buffer.from('paid') }]));
    vi.useRealTimers();
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).message).toMatch(/symbolic link/);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('--out itself may be a link: it is where the user chose to put the output', async () => {
    const linkedOut = path.join(dir, 'linked-out');
    await symlink(out, linkedOut);
    const store = openOutput({ out: linkedOut, s3: null }).batch('b');
    await store.put([{ key: 'images/00001-x-aaaaaaaa.png', data: Buffer.from('paid') }]);
    expect(await store.get('images/00001-x-aaaaaaaa.png', 1024)).toEqual(Buffer.from('paid'));
  });
});

describe('openLogFileSafely', () => {
  it('opens a log file to append to', async () => {
    const file = path.join(batch, 'run.log');
    const fd = openLogFileSafely(file, out);
    writeSync(fd, 'one line\n');
    closeSync(fd);
    expect(await readFile(file, 'utf8')).toBe('one line\n');
  });

  it('refuses a run.log that is a symlink or a FIFO, and a linked batch folder (exit 3)', async () => {
    const target = await plantFile('log');
    await symlink(target, path.join(batch, 'run.log'));
    expect(() => openLogFileSafely(path.join(batch, 'run.log'), out)).toThrow(EnvironmentError);
    expect(() => openLogFileSafely(path.join(batch, 'run.log'), out)).toThrow(/run\.log: it is a symbolic link/);
    expect(await readFile(target, 'utf8')).toBe('precious\n');
    mkfifo(path.join(out, 'fifo.log'));
    expect(() => openLogFileSafely(path.join(out, 'fifo.log'), out)).toThrow(/FIFO/);
    await symlink(elsewhere, path.join(out, 'trap'));
    const err = (() => {
      try {
        openLogFileSafely(path.join(out, 'trap', 'run.log'), out);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).exitCode).toBe(3);
    expect(await readdir(elsewhere)).toEqual(['log']);
  });
});

describe('reading the batch folder back', () => {
  it('does not read a manifest.jsonl that is a symlink or a FIFO', async () => {
    const target = await plantFile('m.jsonl', `${JSON.stringify(makeRecord())}\n`);
    await symlink(target, path.join(batch, 'manifest.jsonl'));
    const r = await readManifest(path.join(batch, 'manifest.jsonl'));
    expect(r.records).toEqual([]);
    expect(r.refused).toMatch(/symbolic link/);
    mkfifo(path.join(out, 'fifo.jsonl'));
    expect((await readManifest(path.join(out, 'fifo.jsonl'))).refused).toMatch(/FIFO/);
  });

  it('skips a deeply nested manifest line as a bad line', async () => {
    const file = path.join(batch, 'manifest.jsonl');
    const deep = `{"id":"x","params":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    await writeFile(file, `${JSON.stringify(makeRecord())}\n${deep}\n`);
    const r = await readManifest(file);
    expect(r.records).toHaveLength(1);
    expect(r.badLines).toBe(1);
  });

  it('never hashes a symlinked image or reads a symlinked sidecar; both are named in warnings', async () => {
    const job1 = makeJob({ index: 1 });
    const job2 = makeJob({ index: 2 });
    const outsideImage = await plantFile('image.png', 'x'.repeat(100));
    const outsideSidecar = await plantFile(
      'sidecar.json',
      JSON.stringify(makeRecord({ prompt: 'SECRET-OUTSIDE' }, makeJob({ index: 3 }))),
    );
    await writeSidecar(batch, job1.file, makeRecord({ bytes: 99, sha256: null }, job1));
    await symlink(outsideImage, path.join(batch, job1.file));
    await symlink(outsideSidecar, path.join(batch, job2.file.replace(/\.png$/, '.json')));
    const r = await rebuildFromDisk(batch);
    expect(r.records.map((x) => [x.index, x.bytes, x.sha256])).toEqual([[1, 99, null]]);
    expect(JSON.stringify(r.records)).not.toContain('SECRET-OUTSIDE');
    expect(r.warnings.join('\n')).toMatch(/00001-.*\.png: not read, it is a symbolic link/);
    expect(r.warnings.join('\n')).toMatch(/skipped sidecar images\/00002-.*\.json: .*symbolic link/);
  });

  it('never reads a record file that is not directly inside images/', async () => {
    await mkdir(path.join(batch, 'images', 'sub'), { recursive: true });
    const rec = makeRecord({ file: 'images/sub/../../../elsewhere/image.png', bytes: 1, sha256: null });
    await writeFile(path.join(batch, 'manifest.jsonl'), `${JSON.stringify(rec)}\n`);
    const r = await rebuildFromDisk(batch);
    expect(r.warnings).toEqual([expect.stringMatching(/is not an image inside the batch folder/)]);
  });
});

describe('checkBatchFolder', () => {
  it('accepts a fresh folder and a missing batch (run creates it)', async () => {
    await checkBatchFolder({ out, dir: batch });
    await checkBatchFolder({ out, dir: path.join(out, 'new') });
  });

  it('refuses a missing batch when it must exist (report): exit 2', async () => {
    const err = await rejection(checkBatchFolder({ out, dir: path.join(out, 'nope'), mustExist: true }));
    expect(err).toBeInstanceOf(UsageError);
  });

  for (const [what, plant] of [
    ['images', (t: string) => symlink(t, path.join(batch, 'images'))],
    ['thumbs', (t: string) => symlink(t, path.join(batch, 'thumbs'))],
    ['manifest.jsonl', (t: string) => symlink(path.join(t, 'f'), path.join(batch, 'manifest.jsonl'))],
    ['run.log', (t: string) => symlink(path.join(t, 'f'), path.join(batch, 'run.log'))],
  ] as const) {
    it(`refuses a planted ${what} link, naming it: exit 3`, async () => {
      await plant(elsewhere);
      const err = await rejection(checkBatchFolder({ out, dir: batch }));
      expect(err).toBeInstanceOf(EnvironmentError);
      expect((err as Error).message).toContain(path.join(batch, what));
    });
  }

  it('refuses a batch folder (or a folder above it, below --out) that is a link; --out itself may be one', async () => {
    await symlink(elsewhere, path.join(out, 'linked'));
    expect(await rejection(checkBatchFolder({ out, dir: path.join(out, 'linked') }))).toBeInstanceOf(EnvironmentError);
    await symlink(elsewhere, path.join(out, 'mock'));
    expect(await rejection(checkBatchFolder({ out, dir: path.join(out, 'mock', 'b') }))).toBeInstanceOf(
      EnvironmentError,
    );
    await symlink(out, path.join(dir, 'out-link'));
    await checkBatchFolder({ out: path.join(dir, 'out-link'), dir: path.join(dir, 'out-link', 'b') });
  });
});
