import { join } from 'node:path';
import { rebuildFromDisk } from './output/manifest.js';
import { writeGallery } from './output/gallery.js';
import { makeThumbnails } from './output/thumbnails.js';
import { batchDir } from './output/paths.js';
import type { ManifestRecord } from './output/record.js';

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
  records: ManifestRecord[];
}

/** Rebuilds manifest.jsonl and index.html of a batch from what is on disk (sidecars first). */
export async function buildReport(out: string, batch: string): Promise<ReportSummary> {
  const dir = batchDir(out, batch);
  const { records, repaired } = await rebuildFromDisk(dir);
  const count = (s: ManifestRecord['status']) => records.filter((r) => r.status === s).length;
  const credits = Math.round(records.reduce((s, r) => s + r.credits, 0) * 1e6) / 1e6;
  const byClass: Record<string, number> = {};
  for (const r of records) if (r.error) byClass[r.error.class] = (byClass[r.error.class] ?? 0) + 1;
  const starts = records.map((r) => (r.started_at ? Date.parse(r.started_at) : NaN)).filter(Number.isFinite);
  const ends = records.map((r) => Date.parse(r.finished_at)).filter(Number.isFinite);
  const durationMs = starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : null;
  const thumbs = await makeThumbnails(dir, records);
  await writeGallery(dir, records, {
    thumbs: thumbs.thumbs, batch, images: records.filter((r) => r.file !== null).length, credits, durationMs, generatedAt: new Date().toISOString(),
  });
  return {
    batch, dir, manifest: join(dir, 'manifest.jsonl'), gallery: join(dir, 'index.html'), images: join(dir, 'images'),
    jobs: records.length, succeeded: count('succeeded'), filtered: count('filtered'), failed: count('failed'), credits, byClass, repaired,
    thumbnails: { made: thumbs.made, upToDate: thumbs.upToDate, failed: thumbs.failed.length }, records,
  };
}
