import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../src/errors.js';
import { manifestRecordSchema } from '../src/output/record.js';
import type { ManifestRecord } from '../src/output/record.js';
import {
  appendManifest,
  compactManifest,
  listSidecars,
  manifestPath,
  readManifest,
  rebuildFromDisk,
} from '../src/output/manifest.js';
import { parseSidecar } from '../src/output/sidecar.js';

const readSidecar = async (file: string) => parseSidecar(await readFile(file, 'utf8'), file);
import { makeJob, makeRecord, saveImage, tinyPng, writeSidecar } from './output-fixtures.js';
import { tempDir } from './helpers/temp.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function rec(index: number, over: Partial<ManifestRecord> = {}): ManifestRecord {
  return makeRecord({ index, ...over }, makeJob({ index, prompt: `prompt number ${index}` }));
}

/** Every line of the file parses as a record: nothing interleaved or cut. */
async function wholeLines(file: string): Promise<ManifestRecord[]> {
  const text = await readFile(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => manifestRecordSchema.parse(JSON.parse(l)));
}

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('nightshift-output-'));
});
afterEach(() => cleanup());

describe('appendManifest', () => {
  it('keeps lines whole under 200 concurrent appends, creating the folder', async () => {
    const batch = path.join(dir, 'out', 'batch');
    const big = 'x'.repeat(20_000); // lines far above PIPE_BUF, the size some think bounds atomicity
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => appendManifest(batch, rec(i + 1, { prompt: `${i} ${big}` }))),
    );
    const lines = await wholeLines(manifestPath(batch));
    expect(lines).toHaveLength(200);
    expect(new Set(lines.map((l) => l.index)).size).toBe(200);
    expect(Object.keys(lines[0]!)[0]).toBe('id'); // schema key order
  });

  it('keeps lines whole with 4 processes appending at once', async () => {
    const batch = path.join(dir, 'batch');
    const child = path.join(dir, 'child.mts'); // .mts: ESM (top-level await) outside the project's package.json
    await writeFile(
      child,
      `import { appendManifest } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/output/manifest.ts')).href)};
import { makeJob, makeRecord } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'test/output-fixtures.ts')).href)};
const w = Number(process.argv[2]);
const pad = 'y'.repeat(30_000);
const jobs = [];
for (let i = 0; i < 50; i++) {
  const index = w * 1000 + i + 1;
  const job = makeJob({ index, prompt: w + ':' + i + ' ' + pad });
  jobs.push(appendManifest(${JSON.stringify(batch)}, makeRecord({ index }, job)));
}
await Promise.all(jobs);
`,
    );
    await Promise.all(
      [0, 1, 2, 3].map((w) => run(process.execPath, ['--import', 'tsx', child, String(w)], { cwd: ROOT })),
    );
    const lines = await wholeLines(manifestPath(batch));
    expect(lines).toHaveLength(200);
    expect(new Set(lines.map((l) => l.id)).size).toBe(200);
  }, 120_000);

  it('throws a StorageError with the errno when the folder cannot exist', async () => {
    await writeFile(path.join(dir, 'file'), 'x');
    const err = await appendManifest(path.join(dir, 'file', 'batch'), rec(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).fsCode).toBe('ENOTDIR');
  });

  it('refuses an invalid record rather than write a line no reader accepts', async () => {
    await expect(appendManifest(dir, { ...rec(1), status: 'done' as never })).rejects.toThrow(
      /invalid manifest record/,
    );
  });
});

describe('readManifest', () => {
  it('takes the last line per id and tolerates garbage and a truncated last line', async () => {
    const file = manifestPath(dir);
    const a1 = rec(1, { status: 'failed', file: null, bytes: null, sha256: null, credits: 0 });
    const a2 = rec(1, { attempts: 2 });
    const b = rec(2);
    const whole = (r: ManifestRecord) => `${JSON.stringify(r)}\n`;
    await writeFile(
      file,
      whole(a1) + 'garbage\n\n{"id": 1}\n' + whole(b) + whole(a2) + JSON.stringify(rec(3)).slice(0, 50),
    );
    const r = await readManifest(file);
    expect(r.records.map((x) => [x.index, x.attempts, x.status])).toEqual([
      [1, 2, 'succeeded'],
      [2, 1, 'succeeded'],
    ]);
    expect(r.badLines).toBe(3);
    expect(r.truncatedTail).toBe(true);
  });

  it('recovers a whole line glued to a partial one', async () => {
    const file = manifestPath(dir);
    await writeFile(file, JSON.stringify(rec(1)).slice(0, 40));
    await appendManifest(dir, rec(2));
    const r = await readManifest(file);
    expect(r.records.map((x) => x.index)).toEqual([2]);
    expect(r.badLines).toBe(1);
  });

  it('reads a missing manifest as empty', async () => {
    expect(await readManifest(path.join(dir, 'nope.jsonl'))).toEqual({
      records: [],
      badLines: 0,
      truncatedTail: false,
    });
  });
});

describe('compactManifest', () => {
  it('writes one line per job in index order, atomically', async () => {
    await compactManifest(dir, [rec(3), rec(1, { attempts: 1 }), rec(2), rec(1, { attempts: 5 })]);
    const lines = await wholeLines(manifestPath(dir));
    expect(lines.map((l) => [l.index, l.attempts])).toEqual([
      [1, 5],
      [2, 1],
      [3, 1],
    ]);
    expect(await readdir(dir)).toEqual(['manifest.jsonl']);
  });
});

describe('sidecars', () => {
  it('writes a sidecar for a job without an image at its intended path', async () => {
    const job = makeJob({ index: 4 });
    const failed = makeRecord(
      {
        status: 'failed',
        file: null,
        bytes: null,
        sha256: null,
        credits: 0,
        error: { class: 'moderated', status: 403, name: 'content_moderation', message: 'no' },
      },
      job,
    );
    const p = await writeSidecar(dir, job.file, failed);
    expect(p).toBe(path.join(dir, job.file.replace(/\.png$/, '.json')));
    expect(await readSidecar(p)).toEqual(failed);
    expect((await readFile(p, 'utf8')).split('\n').length).toBeGreaterThan(10); // pretty
  });

  it('lists valid sidecars, ignoring temp files and warning about bad ones', async () => {
    for (const i of [2, 1]) await writeSidecar(dir, makeJob({ index: i }).file, rec(i));
    const images = path.join(dir, 'images');
    await writeFile(path.join(images, '.00009-x.json.1.abc.tmp'), '{');
    await writeFile(path.join(images, '00007-broken-deadbeef.json'), '{"id":');
    await writeFile(path.join(images, '00008-other-deadbeef.json'), '{"hello": "world"}');
    const { records, warnings } = await listSidecars(dir);
    expect(records.map((r) => r.index)).toEqual([1, 2]);
    expect(warnings).toHaveLength(2);
    expect(warnings.join('\n')).toMatch(/00007-broken/);
    expect(await listSidecars(path.join(dir, 'none'))).toEqual({ records: [], warnings: [] });
  });
});

describe('rebuildFromDisk', () => {
  it('rebuilds from sidecars first, falls back to manifest lines, repairs bad lines', async () => {
    // Jobs 1–5 finished with sidecars; only 1–3 reached the manifest; job 6 has only a manifest line.
    const written: ManifestRecord[] = [];
    for (let i = 1; i <= 5; i++) {
      const job = makeJob({ index: i, prompt: `prompt number ${i}` });
      const saved = await saveImage(dir, job, tinyPng(i + 1, 2), { seed: 100 + i, mime: 'image/png' });
      const r = makeRecord({ index: i, seed: 100 + i, ...saved }, job);
      await writeSidecar(dir, job.file, r);
      written.push(r);
    }
    for (const r of written.slice(0, 3)) await appendManifest(dir, r);
    const only = rec(6, {
      status: 'failed',
      file: null,
      bytes: null,
      sha256: null,
      credits: 0,
      error: { class: 'transient', status: 500, name: 'server_error', message: 'boom' },
    });
    await appendManifest(dir, only);
    await appendFile(manifestPath(dir), 'not json at all\n' + JSON.stringify(rec(7)).slice(0, 30));
    const staleTemp = path.join(dir, 'images', '.00001-x.png.99.abc.tmp');
    await writeFile(staleTemp, 'partial');
    const past = new Date(Date.now() - 3 * 3600_000);
    await utimes(staleTemp, past, past);

    const { records, repaired, warnings } = await rebuildFromDisk(dir);
    expect(records.map((r) => r.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(repaired).toEqual({ missing: 2, truncated: 2 });
    expect(warnings).toEqual([]);
    expect(records.slice(0, 5)).toEqual(written);
    const lines = await wholeLines(manifestPath(dir));
    expect(lines).toEqual(records);
    expect(await readdir(path.join(dir, 'images'))).not.toContain(path.basename(staleTemp));

    // Idempotent: a second report finds nothing to repair.
    const again = await rebuildFromDisk(dir);
    expect(again.repaired).toEqual({ missing: 0, truncated: 0 });
    expect(again.records).toEqual(records);
  });

  it('recomputes bytes and sha256 from the image when they differ, leaving the sidecar alone', async () => {
    const job = makeJob({ index: 1 });
    const saved = await saveImage(dir, job, tinyPng(), { seed: 1, mime: 'image/png' });
    const wrong = makeRecord({ ...saved, bytes: saved.bytes + 5, sha256: 'b'.repeat(64) }, job);
    const sidecar = await writeSidecar(dir, job.file, wrong);
    const { records, warnings } = await rebuildFromDisk(dir);
    const onDisk = await readFile(path.join(dir, job.file));
    expect(records[0]).toMatchObject({
      bytes: onDisk.length,
      sha256: createHash('sha256').update(onDisk).digest('hex'),
    });
    expect(warnings.join()).toMatch(/recorded/);
    expect(await readSidecar(sidecar)).toEqual(wrong);
  });

  it('prefers a manifest line strictly newer than the sidecar and warns about missing images', async () => {
    const job = makeJob({ index: 1 });
    const old = makeRecord(
      { status: 'failed', file: null, bytes: null, sha256: null, finished_at: '2024-05-01T00:00:00.000Z' },
      job,
    );
    await writeSidecar(dir, job.file, old);
    const newer = makeRecord({ finished_at: '2024-05-02T00:00:00.000Z' }, job); // image never made it to disk
    await mkdir(dir, { recursive: true });
    await appendManifest(dir, newer);
    const { records, warnings } = await rebuildFromDisk(dir);
    expect(records).toEqual([newer]);
    expect(warnings.join()).toMatch(/image missing/);
  });
});
