import { checkRecordImage, compactManifest, manifestPath, readManifest, type RebuildResult } from './manifest.js';
import { compareRecords, mapLimit, sidecarNames } from './sidecar.js';

/**
 * The end of `run`: the manifest its workers appended as jobs finished stands for the sidecars when
 * it is whole (no bad or cut line), has a line for every job of the batch, and has as many records
 * as the folder has sidecars (one listing, no sidecar read). Then only the images are looked at (a
 * stat each) and the manifest compacted; otherwise null, and the caller rebuilds from the sidecars
 * as `report` does. Reading 2,000 sidecars cost seconds at the end of every run.
 */
export async function recordsFromManifest(batchDir: string, jobIds: Iterable<string>): Promise<RebuildResult | null> {
  const manifest = await readManifest(manifestPath(batchDir));
  if (manifest.refused !== undefined || manifest.badLines > 0 || manifest.truncatedTail) return null;
  const ids = new Set(manifest.records.map((r) => r.id));
  for (const id of jobIds) if (!ids.has(id)) return null;
  if ((await sidecarNames(batchDir)).length !== manifest.records.length) return null;
  const ctx = { verify: false, warnings: [] as string[] };
  const records = await mapLimit(manifest.records, 16, (rec) => checkRecordImage(batchDir, rec, ctx));
  records.sort(compareRecords);
  await compactManifest(batchDir, records);
  return { records, repaired: { missing: 0, truncated: 0 }, warnings: ctx.warnings };
}
