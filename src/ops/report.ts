import { join } from 'node:path';
import { checkName } from '../names.js';
import { UsageError } from '../errors.js';
import { rebuildFromDisk, type RebuildResult } from '../output/manifest.js';
import { makeObjectThumbnails, rebuildFromObjects } from '../output/object-rebuild.js';
import { recordsFromManifest } from '../output/manifest-fast.js';
import { checkBatchFolder } from '../output/safe-dirs.js';
import { renderGallery, writeGallery } from '../output/gallery.js';
import { makeThumbnails, type ThumbnailResult } from '../output/thumbnails.js';
import { batchDir, GALLERY_FILE, IMAGES_DIR, MANIFEST_FILE } from '../output/paths.js';
import { batchStore } from '../output/storage/open.js';
import type { BatchStore, OutputRoot } from '../output/storage/types.js';
import type { ManifestRecord } from '../output/record.js';
import type { BatchRef } from '../redis/keys.js';

export interface ReportSummary {
  batch: string;
  dir: string;
  manifest: string;
  gallery: string;
  images: string;
  jobs: number;
  succeeded: number;
  filtered: number;
  failed: number;
  credits: number;
  byClass: Record<string, number>;
  repaired: { missing: number; truncated: number };
  thumbnails: { made: number; upToDate: number; failed: number };
  /** What the rebuild skipped or corrected (unreadable sidecars, links, images that differ), and thumbnail failures. */
  warnings: string[];
  records: ManifestRecord[];
}

/**
 * Rebuilds manifest.jsonl and index.html of a batch from what is on disk (sidecars first). The
 * name is checked as `enqueue` checks it and the batch folder must exist (UsageError, exit 2),
 * and nothing planted in it is followed (EnvironmentError, exit 3). With an object store for
 * `output` (`--out s3://…`), the same from the batch's objects, and the results uploaded.
 * `jobs`: the batch's job ids, when the caller knows them (the end of `run`): a manifest with a
 * whole line for each is used as it is, and the sidecars are read only when it is not.
 */
export async function buildReport(
  out: string,
  ref: BatchRef,
  opts: { output?: OutputRoot; jobs?: Iterable<string> } = {},
): Promise<ReportSummary> {
  checkName(ref.batch, '--batch', 'batch');
  if (opts.output?.kind === 'objects') return buildObjectReport(batchStore(opts.output, ref), ref);
  const dir = batchDir(out, ref);
  await checkBatchFolder({ out, dir, mustExist: true });
  const fast = opts.jobs === undefined ? null : await recordsFromManifest(dir, opts.jobs);
  const rebuilt = fast ?? (await rebuildFromDisk(dir));
  const thumbs = await makeThumbnails(dir, rebuilt.records);
  const totals = totalsOf(ref.batch, rebuilt.records);
  await writeGallery(dir, rebuilt.records, { thumbs: thumbs.thumbs, ...totals });
  return summarize({ ref, rebuilt, thumbs, credits: totals.credits }, (f) => join(dir, f));
}

async function buildObjectReport(store: BatchStore, ref: BatchRef): Promise<ReportSummary> {
  const rebuilt = await rebuildFromObjects(store);
  if (rebuilt.listed.length === 0) {
    throw new UsageError(`no batch "${ref.batch}" in ${store.where}: nothing to report`);
  }
  const thumbs = await makeObjectThumbnails(store, rebuilt.records, rebuilt.listed);
  const totals = totalsOf(ref.batch, rebuilt.records);
  const html = renderGallery(rebuilt.records, { thumbs: thumbs.thumbs, ...totals });
  await store.put([{ key: GALLERY_FILE, data: html }], { durable: false });
  return summarize({ ref, rebuilt, thumbs, credits: totals.credits }, (f) => `${store.where}${f}`);
}

/** The gallery's totals: images, credits and the time from the first start to the last finish. */
function totalsOf(batch: string, records: ManifestRecord[]) {
  const credits = Math.round(records.reduce((s, r) => s + r.credits, 0) * 1e6) / 1e6;
  // A loop, not Math.max(...array): spreading 100,000 values overflows the call stack.
  let first = Infinity;
  let last = -Infinity;
  for (const r of records) {
    const start = r.started_at ? Date.parse(r.started_at) : NaN;
    const end = Date.parse(r.finished_at);
    if (Number.isFinite(start)) first = Math.min(first, start);
    if (Number.isFinite(end)) last = Math.max(last, end);
  }
  const durationMs = Number.isFinite(first) && Number.isFinite(last) ? last - first : null;
  return {
    batch,
    images: records.filter((r) => r.file !== null).length,
    credits,
    durationMs,
    generatedAt: new Date().toISOString(),
  };
}

function summarize(
  o: { ref: BatchRef; rebuilt: RebuildResult; thumbs: ThumbnailResult; credits: number },
  at: (file: string) => string,
): ReportSummary {
  const { records, repaired, warnings } = o.rebuilt;
  const count = (s: ManifestRecord['status']) => records.filter((r) => r.status === s).length;
  const byClass: Record<string, number> = {};
  for (const r of records) if (r.error) byClass[r.error.class] = (byClass[r.error.class] ?? 0) + 1;
  const { thumbs } = o;
  return {
    batch: o.ref.batch,
    dir: at('').replace(/\/$/, ''),
    manifest: at(MANIFEST_FILE),
    gallery: at(GALLERY_FILE),
    images: at(IMAGES_DIR),
    jobs: records.length,
    succeeded: count('succeeded'),
    filtered: count('filtered'),
    failed: count('failed'),
    credits: o.credits,
    byClass,
    repaired,
    thumbnails: { made: thumbs.made, upToDate: thumbs.upToDate, failed: thumbs.failed.length },
    warnings: [...warnings, ...thumbs.failed.map((f) => `${f.file}: no thumbnail (${f.message})`)],
    records,
  };
}

/** The lines `report` and `run` print after the totals: thumbnails that failed, then the warnings (a few). */
export function reportNotes(r: Pick<ReportSummary, 'thumbnails' | 'warnings'>, max = 10): string[] {
  const notes: string[] = [];
  if (r.thumbnails.failed > 0) {
    notes.push(`thumbnails: ${r.thumbnails.failed} could not be made (the gallery shows "no preview" for them)`);
  }
  for (const w of r.warnings.slice(0, max)) notes.push(`warning: ${w}`);
  if (r.warnings.length > max) notes.push(`… and ${r.warnings.length - max} more warnings`);
  return notes;
}
