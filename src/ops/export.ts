import { constants } from 'node:fs';
import { lstat, open, readdir, readFile, realpath, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EnvironmentError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../output/atomic.js';
import { rebuildFromDisk } from '../output/manifest.js';
import { IMAGES_DIR, MANIFEST_FILE, resolveInBatch } from '../output/paths.js';
import type { ManifestRecord } from '../output/record.js';
import { checkName } from '../names.js';
import { writeCaptions, writeImagefolder, writeWebdataset, type Sample, type Written } from './export-formats.js';

/**
 * `export`: a finished batch as a training dataset. The batch is read from disk the way `report`
 * reads it (sidecars first, the manifest for the rest), only from inside its folder; the export
 * folder gets only what this export wrote (a marker lists it, so a repeat export replaces it).
 */

export const EXPORT_FORMATS = ['imagefolder', 'webdataset', 'captions'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The flags as commander parsed them: nothing filled in. */
export interface ExportOptions {
  batch: string;
  format: ExportFormat;
  /** The export folder, absolute. */
  to: string;
  /** Also export filtered (blurred) images, and failed jobs that left one. Default false. */
  includeFiltered: boolean;
  /** Samples per webdataset shard. Default 1000. */
  shardSize: number;
}

/** Checks what the settings could not: the batch name, and that a format and a folder were given. */
export function checkExportOptions(o: {
  batch: string | undefined;
  format: ExportFormat | undefined;
  to: string | undefined;
  includeFiltered: boolean;
  shardSize: number;
}): ExportOptions {
  const batch = o.batch ?? '';
  checkName(batch, '--batch', 'batch');
  if (o.format === undefined) throw new UsageError(`--format: give one of ${EXPORT_FORMATS.join(', ')}`);
  if (o.to === undefined) throw new UsageError('--to: give the folder to export into');
  return {
    batch,
    format: o.format,
    to: path.resolve(o.to),
    includeFiltered: o.includeFiltered,
    shardSize: o.shardSize,
  };
}

export interface ExportSummary {
  batch: string;
  format: ExportFormat;
  to: string;
  /** Images exported. */
  exported: number;
  /** Jobs left out: filtered and failed (unless included), and images missing on disk. */
  leftOut: { filtered: number; failed: number; missing: number };
  linked: number;
  copied: number;
  /** Files of the export, relative to `to`. */
  files: string[];
}

const MARKER = '.nightshift-export.json';
// `source` is the batch folder: a mock and a real batch of one name are different batches.
const markerSchema = z.object({
  batch: z.string(),
  source: z.string().optional(),
  format: z.string(),
  files: z.array(z.string()),
});

/** Exports the batch in `batchDir` (which must exist) as `opts` says. */
export async function exportBatch(batchDir: string, opts: ExportOptions): Promise<ExportSummary> {
  await requireBatchFolder(batchDir, opts.batch);
  const root = path.resolve(batchDir);
  if (opts.to === root || opts.to.startsWith(`${root}${path.sep}`)) {
    throw new UsageError(`--to: ${opts.to} is inside the batch folder; export somewhere else`);
  }
  const previous = await previousExport(opts.to, { batch: opts.batch, source: root });
  const { records } = await rebuildFromDisk(root);
  const leftOut = { filtered: 0, failed: 0, missing: 0 };
  const samples: Sample[] = [];
  for (const r of records) {
    const wanted = r.status === 'succeeded' || opts.includeFiltered;
    if (!wanted || r.file === null) {
      if (r.status !== 'succeeded') leftOut[r.status]++;
      continue;
    }
    const source = await checkedImage(root, r.file);
    if (source === null) leftOut.missing++;
    else samples.push(sampleOf(r, r.file, source));
  }
  const written = await writeFormat(opts, samples);
  const files = [...written.files].sort();
  await removeStale(opts.to, previous, new Set(files));
  const marker = { batch: opts.batch, source: root, format: opts.format, files };
  await writeFileAtomic(path.join(opts.to, MARKER), `${JSON.stringify(marker, null, 1)}\n`, { fsync: false });
  return {
    batch: opts.batch,
    format: opts.format,
    to: opts.to,
    exported: samples.length,
    leftOut,
    linked: written.linked,
    copied: written.copied,
    files,
  };
}

function writeFormat(opts: ExportOptions, samples: Sample[]): Promise<Written> {
  if (opts.format === 'imagefolder') return writeImagefolder(opts.to, samples);
  if (opts.format === 'captions') return writeCaptions(opts.to, samples);
  return writeWebdataset(opts.to, samples, opts.shardSize);
}

function sampleOf(record: ManifestRecord, rel: string, source: string): Sample {
  const name = path.posix.basename(rel);
  const ext = path.posix.extname(name);
  return { record, source, name, key: name.slice(0, name.length - ext.length), ext: ext.slice(1).toLowerCase() };
}

/** The batch folder, its images folder and its manifest must be what nightshift made: no symlinks. */
async function requireBatchFolder(dir: string, batch: string): Promise<void> {
  const top = await kindOf(dir);
  if (top === 'missing') throw new UsageError(`--batch: there is no batch ${JSON.stringify(batch)} (no folder ${dir})`);
  const planted = (p: string) =>
    new EnvironmentError(`${p} is a symlink or not what nightshift writes there; nothing exported`);
  if (top !== 'dir') throw planted(dir);
  const images = path.join(dir, IMAGES_DIR);
  if (!['missing', 'dir'].includes(await kindOf(images))) throw planted(images);
  const manifest = path.join(dir, MANIFEST_FILE);
  if (!['missing', 'file'].includes(await kindOf(manifest))) throw planted(manifest);
}

/** What is at `p` itself, a symlink not followed ('other'). */
async function kindOf(p: string): Promise<'missing' | 'dir' | 'file' | 'other'> {
  try {
    const st = await lstat(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new EnvironmentError(`cannot read ${p}`, { cause: err });
  }
}

/**
 * The image's path when it is a regular file reached without any symlink inside the batch
 * folder; null when it is missing. Anything else was planted (nightshift writes no links) and
 * stops the export: reading through it would read outside the batch.
 */
async function checkedImage(root: string, rel: string): Promise<string | null> {
  let abs: string;
  try {
    abs = resolveInBatch(root, rel);
  } catch {
    throw new EnvironmentError(`${rel}: the manifest names a file outside the batch folder; not exported`);
  }
  let real: string;
  try {
    real = await realpath(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new EnvironmentError(`cannot read ${abs}`, { cause: err });
  }
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  const isFile = fh ? (await fh.stat()).isFile() : false;
  await fh?.close();
  if (real !== path.join(await realpath(root), path.relative(root, abs)) || !isFile) {
    throw new EnvironmentError(
      `${path.join(root, rel)} is a symlink or not a regular file; nightshift did not make it. Remove it, then export again`,
    );
  }
  return abs;
}

/** The files an earlier export of this batch wrote to `to`; refuses a folder holding anything else. */
async function previousExport(to: string, of: { batch: string; source: string }): Promise<string[]> {
  let entries: string[];
  try {
    if (!(await stat(to)).isDirectory()) throw new UsageError(`--to: ${to} is not a folder`);
    entries = await readdir(to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  if (entries.length === 0) return [];
  let marker: z.infer<typeof markerSchema> | null = null;
  try {
    marker = markerSchema.parse(JSON.parse(await readFile(path.join(to, MARKER), 'utf8')));
  } catch {
    // no marker, or not one of ours
  }
  if (marker === null) {
    throw new UsageError(`--to: ${to} is not empty and holds no earlier export; give a new or empty folder`);
  }
  if (marker.batch !== of.batch || (marker.source !== undefined && marker.source !== of.source)) {
    const from = marker.source ? ` (from ${marker.source})` : '';
    throw new UsageError(`--to: ${to} holds the export of batch ${marker.batch}${from}; give another folder`);
  }
  return marker.files;
}

/**
 * Removes what the last export wrote and this one did not (a shard fewer, a filtered image left out),
 * and the folders that leaves empty (`train/` after an imagefolder export is redone as captions).
 */
async function removeStale(to: string, previous: readonly string[], keep: ReadonlySet<string>): Promise<void> {
  const emptied = new Set<string>();
  for (const rel of previous) {
    if (keep.has(rel)) continue;
    let abs: string;
    try {
      abs = resolveInBatch(to, rel); // the marker is a file like any other: never let it point out
    } catch {
      continue;
    }
    await rm(abs, { force: true });
    for (let dir = path.dirname(abs); dir.startsWith(`${to}${path.sep}`); dir = path.dirname(dir)) emptied.add(dir);
  }
  // Deepest first; a folder still holding something stays.
  for (const dir of [...emptied].sort((a, b) => b.length - a.length)) await rmdir(dir).catch(() => {});
}
