import { join } from 'node:path';
import { checkName } from '../names.js';
import { rebuildFromDisk } from '../output/manifest.js';
import { checkBatchFolder } from '../output/safe-dirs.js';
import { writeGallery } from '../output/gallery.js';
import { makeThumbnails } from '../output/thumbnails.js';
import { batchDir } from '../output/paths.js';
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
 * and nothing planted in it is followed (EnvironmentError, exit 3).
 */
export async function buildReport(out: string, ref: BatchRef): Promise<ReportSummary> {
  const { batch } = ref;
  checkName(batch, '--batch', 'batch');
  const dir = batchDir(out, ref);
  await checkBatchFolder({ out, dir, mustExist: true });
  const { records, repaired, warnings } = await rebuildFromDisk(dir);
  const count = (s: ManifestRecord['status']) => records.filter((r) => r.status === s).length;
  const credits = Math.round(records.reduce((s, r) => s + r.credits, 0) * 1e6) / 1e6;
  const byClass: Record<string, number> = {};
  for (const r of records) if (r.error) byClass[r.error.class] = (byClass[r.error.class] ?? 0) + 1;
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
  const thumbs = await makeThumbnails(dir, records);
  await writeGallery(dir, records, {
    thumbs: thumbs.thumbs,
    batch,
    images: records.filter((r) => r.file !== null).length,
    credits,
    durationMs,
    generatedAt: new Date().toISOString(),
  });
  return {
    batch,
    dir,
    manifest: join(dir, 'manifest.jsonl'),
    gallery: join(dir, 'index.html'),
    images: join(dir, 'images'),
    jobs: records.length,
    succeeded: count('succeeded'),
    filtered: count('filtered'),
    failed: count('failed'),
    credits,
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
