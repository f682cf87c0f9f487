import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnvironmentError, UsageError } from '../src/errors.js';
import { checkExportOptions, exportBatch, type ExportOptions } from '../src/ops/export.js';
import { settingsOf } from '../src/config.js';
import type { ManifestRecord } from '../src/output/record.js';
import { makeJob, makeRecord, tinyPng, writeSidecar } from './output-fixtures.js';
import { tempDir, type TempDir } from './helpers/temp.js';

let tmp: TempDir;
let batch: string;
let originals: Map<string, Buffer>;
beforeEach(async () => {
  tmp = await tempDir('nightshift-output-');
  batch = join(tmp.dir, 'out', 'night');
  originals = new Map();
});
afterEach(async () => {
  await tmp.cleanup();
});

/** A batch folder as workers leave it: images with sidecars, a filtered image, a failed job without one. */
async function makeBatch(): Promise<ManifestRecord[]> {
  const specs = [
    { index: 1, prompt: 'a fox under a lantern', status: 'succeeded' as const, format: 'png' as const },
    { index: 2, prompt: 'a heron, ink wash', status: 'filtered' as const, format: 'png' as const },
    { index: 3, prompt: 'an owl "quoted", café', status: 'succeeded' as const, format: 'webp' as const },
    { index: 4, prompt: 'never made', status: 'failed' as const, format: 'png' as const },
    { index: 5, prompt: 'a wolf at dawn', status: 'succeeded' as const, format: 'png' as const },
  ];
  const records: ManifestRecord[] = [];
  for (const s of specs) {
    const job = makeJob({ index: s.index, prompt: s.prompt, batch: 'night', seed: 100 + s.index });
    const file = s.format === 'png' ? job.file : job.file.replace(/\.png$/, '.webp');
    const bytes = s.format === 'png' ? tinyPng(s.index + 1, 2) : Buffer.from(`RIFF....WEBP fake ${s.index}`);
    const rec = makeRecord(
      {
        status: s.status,
        file: s.status === 'failed' ? null : file,
        bytes: s.status === 'failed' ? null : bytes.length,
        sha256: s.status === 'failed' ? null : createHash('sha256').update(bytes).digest('hex'),
        params: { aspect_ratio: '16:9', output_format: s.format },
        finished_at: `2024-05-01T00:00:0${s.index}.250Z`,
        error:
          s.status === 'failed' ? { class: 'moderated', status: 403, name: 'content_moderation', message: 'no' } : null,
      },
      { ...job, file },
    );
    if (rec.file !== null) {
      await mkdir(join(batch, 'images'), { recursive: true });
      await writeFile(join(batch, rec.file), bytes);
      originals.set(rec.id, bytes);
    }
    await writeSidecar(batch, file, rec);
    records.push(rec);
  }
  return records;
}

function opts(format: ExportOptions['format'], to: string, extra: Partial<ExportOptions> = {}): ExportOptions {
  return { ...checkExportOptions({ batch: 'night', format, to, includeFiltered: false, shardSize: 1000 }), ...extra };
}

/** sha256 of every file under dir, by relative path. */
async function hashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else
        out[relative(dir, p)] = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
    }
  };
  await walk(dir);
  return out;
}

async function readTar(
  file: string,
): Promise<{ name: string; body: Buffer; mode: number; uid: number; mtime: number }[]> {
  const ex = extract();
  const entries: { name: string; body: Buffer; mode: number; uid: number; mtime: number }[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        entries.push({
          name: h.name,
          body: Buffer.concat(chunks),
          mode: h.mode!,
          uid: h.uid!,
          mtime: h.mtime!.getTime(),
        });
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  Readable.from(await readFile(file)).pipe(ex);
  await done;
  return entries;
}

describe('export imagefolder', () => {
  it('writes train/metadata.jsonl of the succeeded images, each file present and linked', async () => {
    const records = await makeBatch();
    const to = join(tmp.dir, 'ds');
    const s = await exportBatch(batch, opts('imagefolder', to));
    expect(s).toMatchObject({ exported: 3, leftOut: { filtered: 1, failed: 1, missing: 0 }, linked: 3, copied: 0 });
    const lines = (await readFile(join(to, 'train/metadata.jsonl'), 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    const meta = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const wanted = records.filter((r) => r.status === 'succeeded');
    expect(meta.map((m) => m.text)).toEqual(wanted.map((r) => r.prompt));
    for (const [i, m] of meta.entries()) {
      const r = wanted[i]!;
      expect(m).toEqual({
        file_name: r.file!.replace('images/', ''),
        text: r.prompt,
        negative_prompt: null,
        seed: r.seed,
        model: 'core',
        params: r.params,
        id: r.id,
        status: 'succeeded',
      });
      const image = join(to, 'train', String(m.file_name));
      expect(await readFile(image)).toEqual(originals.get(r.id));
      expect(statSync(image).ino).toBe(statSync(join(batch, r.file!)).ino);
    }
  });

  it('--include-filtered adds the filtered image; a failed job has none to add', async () => {
    await makeBatch();
    const to = join(tmp.dir, 'ds');
    const s = await exportBatch(batch, opts('imagefolder', to, { includeFiltered: true }));
    expect(s).toMatchObject({ exported: 4, leftOut: { filtered: 0, failed: 1, missing: 0 } });
    const meta = (await readFile(join(to, 'train/metadata.jsonl'), 'utf8')).trim().split('\n');
    expect(meta.map((l) => (JSON.parse(l) as { status: string }).status)).toEqual([
      'succeeded',
      'filtered',
      'succeeded',
      'succeeded',
    ]);
  });

  it.skipIf(!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(tmpdir()).dev)(
    'copies when the export is on another filesystem',
    async () => {
      await makeBatch();
      const to = await tempDir('nightshift-export-', '/dev/shm');
      try {
        const s = await exportBatch(batch, opts('imagefolder', to.dir));
        expect(s).toMatchObject({ exported: 3, linked: 0, copied: 3 });
      } finally {
        await to.cleanup();
      }
    },
  );
});

describe('export webdataset', () => {
  it('writes shards of --shard-size samples, read back with a tar library and the tar command', async () => {
    const records = await makeBatch();
    const to = join(tmp.dir, 'wds');
    const s = await exportBatch(batch, opts('webdataset', to, { shardSize: 2 }));
    expect(s.files).toEqual(['00000.tar', '00001.tar']);
    const listed = execFileSync('tar', ['-tf', join(to, '00000.tar')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    const first = records[0]!.file!.replace('images/', '').replace(/\.png$/, '');
    const third = records[2]!.file!.replace('images/', '').replace(/\.webp$/, '');
    expect(listed).toEqual([
      `${first}.png`,
      `${first}.json`,
      `${first}.txt`,
      `${third}.webp`,
      `${third}.json`,
      `${third}.txt`,
    ]);
    const entries = [...(await readTar(join(to, '00000.tar'))), ...(await readTar(join(to, '00001.tar')))];
    expect(entries).toHaveLength(9);
    for (const r of records.filter((x) => x.status === 'succeeded')) {
      const key = r.file!.replace('images/', '').replace(/\.\w+$/, '');
      const get = (ext: string) => entries.find((e) => e.name === `${key}.${ext}`)!;
      expect(get(r.params.output_format).body).toEqual(originals.get(r.id));
      expect(get('txt').body.toString('utf8')).toBe(r.prompt);
      expect(JSON.parse(get('json').body.toString('utf8'))).toEqual(r);
      expect(get('txt')).toMatchObject({ mode: 0o644, uid: 0, mtime: Date.parse(r.finished_at.slice(0, 19) + 'Z') });
    }
  });

  it('refuses a shard size that is not a whole number', () => {
    for (const bad of ['0', '-1', '1.5', 'ten', '']) {
      expect(() => settingsOf({ shardSize: bad }, {})('shardSize')).toThrow(/--shard-size/);
    }
    expect(settingsOf({}, {})('shardSize')).toBe(1000);
  });
});

describe('export captions', () => {
  it('puts a .txt of the prompt beside each image', async () => {
    const records = await makeBatch();
    const to = join(tmp.dir, 'cap');
    await exportBatch(batch, opts('captions', to));
    const names = (await readdir(to)).filter((n) => !n.startsWith('.')).sort();
    const wanted = records.filter((r) => r.status === 'succeeded');
    expect(names).toHaveLength(wanted.length * 2);
    for (const r of wanted) {
      const image = r.file!.replace('images/', '');
      expect(await readFile(join(to, image))).toEqual(originals.get(r.id));
      expect(await readFile(join(to, image.replace(/\.\w+$/, '.txt')), 'utf8')).toBe(r.prompt);
    }
  });
});

describe('export is repeatable and stays in its folders', () => {
  it('twice gives the same bytes, in the same folder or a new one', async () => {
    await makeBatch();
    for (const format of ['imagefolder', 'webdataset', 'captions'] as const) {
      const a = join(tmp.dir, `${format}-a`);
      const b = join(tmp.dir, `${format}-b`);
      await exportBatch(batch, opts(format, a, { shardSize: 2 }));
      const first = await hashes(a);
      await exportBatch(batch, opts(format, a, { shardSize: 2 }));
      await exportBatch(batch, opts(format, b, { shardSize: 2 }));
      expect(await hashes(a), format).toEqual(first);
      expect(await hashes(b), format).toEqual(first);
    }
  });

  it('a repeat export removes what it no longer contains', async () => {
    await makeBatch();
    const to = join(tmp.dir, 'wds');
    await exportBatch(batch, opts('webdataset', to, { shardSize: 1, includeFiltered: true }));
    expect((await readdir(to)).sort()).toEqual([
      '.nightshift-export.json',
      '00000.tar',
      '00001.tar',
      '00002.tar',
      '00003.tar',
    ]);
    await exportBatch(batch, opts('webdataset', to, { shardSize: 2 }));
    expect((await readdir(to)).sort()).toEqual(['.nightshift-export.json', '00000.tar', '00001.tar']);
  });

  it('a repeat export in another format leaves no empty folder of the first', async () => {
    await makeBatch();
    const to = join(tmp.dir, 'ds');
    await exportBatch(batch, opts('imagefolder', to));
    await exportBatch(batch, opts('captions', to));
    const left = await readdir(to);
    expect(left).not.toContain('train');
    expect(left.filter((f) => f.endsWith('.txt'))).toHaveLength(3);
  });

  it('a batch of the same name from another API (another folder) does not replace the export', async () => {
    await makeBatch();
    const to = join(tmp.dir, 'ds');
    await exportBatch(batch, opts('captions', to));
    const mockBatch = join(tmp.dir, 'out', 'mock', 'night');
    await cp(batch, mockBatch, { recursive: true });
    await expect(exportBatch(mockBatch, opts('captions', to))).rejects.toThrow(
      /holds the export of batch night \(from .*out\/night\)/,
    );
    expect((await readdir(to)).filter((f) => f.endsWith('.txt'))).toHaveLength(3);
  });

  it('refuses a bad batch name, a missing batch, a folder holding other files, and a target inside the batch', async () => {
    await makeBatch();
    const base = { includeFiltered: false, shardSize: 1000 };
    expect(() => checkExportOptions({ ...base, batch: '../etc', format: 'captions', to: 'x' })).toThrow(UsageError);
    expect(() => settingsOf({ format: 'zip' }, {})('exportFormat')).toThrow(/--format/);
    expect(() => checkExportOptions({ ...base, batch: 'night', format: undefined, to: 'x' })).toThrow(/--format/);
    await expect(exportBatch(join(tmp.dir, 'out', 'nope'), opts('captions', join(tmp.dir, 'c')))).rejects.toThrow(
      /--batch: there is no batch "night"/,
    );
    const busy = join(tmp.dir, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'mine.txt'), 'keep me');
    await expect(exportBatch(batch, opts('captions', busy))).rejects.toThrow(
      /is not empty and holds no earlier export/,
    );
    expect(await readFile(join(busy, 'mine.txt'), 'utf8')).toBe('keep me');
    const err = await exportBatch(batch, opts('captions', join(batch, 'ds'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
  });

  it('a planted symlink image is refused (exit 3) and what it points to is never read', async () => {
    const records = await makeBatch();
    const secret = join(tmp.dir, 'secret.png');
    await writeFile(secret, 'not for export');
    const victim = join(batch, records[4]!.file!);
    await rm(victim);
    await symlink(secret, victim);
    const to = join(tmp.dir, 'ds');
    const err = await exportBatch(batch, opts('webdataset', to)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).exitCode).toBe(3);
    expect((err as Error).message).toContain(`${victim} is a symlink or not a regular file`);
    expect(existsSync(to) ? await readdir(to) : []).toEqual([]);
  });

  it('a planted images/ symlink to another folder is refused too', async () => {
    await makeBatch();
    const elsewhere = join(tmp.dir, 'elsewhere');
    execFileSync('mv', [join(batch, 'images'), elsewhere]);
    await symlink(elsewhere, join(batch, 'images'));
    const err = await exportBatch(batch, opts('captions', join(tmp.dir, 'c'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as Error).message).toBe(
      `${join(batch, 'images')} is a symlink or not what nightshift writes there; nothing exported`,
    );
    expect((await stat(elsewhere)).isDirectory()).toBe(true);
  });

  it('a planted manifest.jsonl symlink is refused before it is read', async () => {
    await makeBatch();
    await writeFile(join(tmp.dir, 'other.jsonl'), '{"not":"ours"}\n');
    await symlink(join(tmp.dir, 'other.jsonl'), join(batch, 'manifest.jsonl'));
    const err = await exportBatch(batch, opts('captions', join(tmp.dir, 'c'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).exitCode).toBe(3);
    expect(await readFile(join(tmp.dir, 'other.jsonl'), 'utf8')).toBe('{"not":"ours"}\n');
  });
});
