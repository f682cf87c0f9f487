import { createHash } from 'node:crypto';
import type { RebuildResult } from './manifest.js';
import { normalizeRecord, compareRecords, mapLimit, readSidecars } from './sidecar.js';
import type { ManifestRecord } from './record.js';
import { IMAGES_DIR, MANIFEST_FILE } from './paths.js';
import { MAX_IMAGE_BYTES, thumbnailOf, thumbPathFor, THUMBS_DIR, type ThumbnailResult } from './thumbnails.js';
import type { BatchStore, StoredObject } from './storage/types.js';

/**
 * `report` for a batch in an object store, where nothing can be appended: every job wrote its own
 * record (its sidecar object), and the manifest is rebuilt from them with one listing of `images/`
 * and one GET per sidecar, then written whole.
 */
export async function rebuildFromObjects(store: BatchStore): Promise<RebuildResult & { listed: StoredObject[] }> {
  const listed = await store.list(`${IMAGES_DIR}/`);
  const warnings: string[] = [];
  // No batch there (a mistyped name): nothing to rebuild, and nothing is written.
  if (listed.length === 0) return { records: [], repaired: { missing: 0, truncated: 0 }, warnings, listed };
  const sidecars = listed.filter((o) => o.key.endsWith('.json') && !o.key.slice(IMAGES_DIR.length + 1).includes('/'));
  const read = await readSidecars(
    store,
    sidecars.map((o) => o.key),
    16,
  );
  warnings.push(...read.warnings);
  const byId = new Map<string, ManifestRecord>();
  for (const r of read.records) {
    const seen = byId.get(r.id);
    if (seen === undefined || r.finished_at > seen.finished_at) byId.set(r.id, r);
  }
  const sizes = new Map(listed.map((o) => [o.key, o.size]));
  const records = await mapLimit([...byId.values()], 16, (r) => checkObject(store, r, { sizes, warnings }));
  records.sort(compareRecords);
  const body = records.map((r) => `${JSON.stringify(normalizeRecord(r))}\n`).join('');
  await store.put([{ key: MANIFEST_FILE, data: body }]);
  return { records, repaired: { missing: 0, truncated: 0 }, warnings: warnings.sort(), listed };
}

/** A record's image as stored: bytes and sha256 recomputed when its size differs from the record. */
async function checkObject(
  store: BatchStore,
  rec: ManifestRecord,
  o: { sizes: Map<string, number>; warnings: string[] },
): Promise<ManifestRecord> {
  if (rec.file === null) return rec;
  const size = o.sizes.get(rec.file);
  if (size === undefined) {
    if (rec.status !== 'failed') o.warnings.push(`${rec.file}: image missing for ${rec.status} job ${rec.id}`);
    return rec;
  }
  if (size === rec.bytes && rec.sha256 !== null) return rec;
  const bytes = await store.get(rec.file, MAX_IMAGE_BYTES).catch(() => null);
  if (bytes === null) return rec;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  o.warnings.push(`${rec.file}: stored ${bytes.length} bytes, recorded ${rec.bytes ?? 'none'}; manifest updated`);
  return { ...rec, bytes: bytes.length, sha256 };
}

/**
 * Thumbnails of a batch in an object store: one listing of `thumbs/`; a thumbnail written after its
 * image is kept, any other is made from the image's bytes and uploaded.
 */
export async function makeObjectThumbnails(
  store: BatchStore,
  records: readonly ManifestRecord[],
  images: readonly StoredObject[],
): Promise<ThumbnailResult> {
  const result: ThumbnailResult = { thumbs: new Map(), made: 0, upToDate: 0, failed: [] };
  const todo = records.filter((r) => r.file !== null && thumbPathFor(r.file) !== null);
  if (todo.length === 0) return result;
  const { default: sharp } = await import('sharp');
  const thumbs = new Map((await store.list(`${THUMBS_DIR}/`)).map((o) => [o.key, o]));
  const imageAt = new Map(images.map((o) => [o.key, o]));
  await mapLimit(todo, 4, async (r) => {
    const file = r.file!;
    const rel = thumbPathFor(file)!;
    const image = imageAt.get(file);
    if (image === undefined) return; // image gone: the gallery shows no picture either way
    try {
      const thumb = thumbs.get(rel);
      if (thumb && thumb.modifiedMs !== null && image.modifiedMs !== null && thumb.modifiedMs >= image.modifiedMs) {
        result.upToDate++;
      } else {
        const bytes = await store.get(file, MAX_IMAGE_BYTES);
        if (bytes === null) return;
        await store.put([{ key: rel, data: await thumbnailOf(sharp, bytes, 256) }], { durable: false });
        result.made++;
      }
      result.thumbs.set(file, rel);
    } catch (err) {
      result.failed.push({ file, message: err instanceof Error ? err.message : String(err) });
    }
  });
  return result;
}
