import type { ManifestRecord } from './record.js';
import { scanNames, slugOf, type BatchScan, type DiskVerdict, type JobOnDisk } from './batch-scan.js';
import { finishedImage } from './image-writer.js';
import { IMAGES_DIR } from './paths.js';
import { mapLimit, readStoredSidecar } from './sidecar.js';
import type { BatchStore } from './storage/types.js';

/**
 * The batch scan of an object store: one listing of `images/` (a request per 1,000 objects) gives
 * the names, as a folder listing does, and each object's size, so an image is judged intact without
 * a request of its own. Only the sidecars whose name matches a job are fetched.
 */
export interface StoredScan extends BatchScan {
  /** Object sizes by key (`images/…`). */
  sizes: Map<string, number>;
}

export async function scanStore(store: BatchStore): Promise<StoredScan> {
  const listed = await store.list(`${IMAGES_DIR}/`);
  const sizes = new Map(listed.map((o) => [o.key, o.size]));
  const names = listed.map((o) => o.key.slice(IMAGES_DIR.length + 1)).filter((n) => !n.includes('/'));
  return { ...scanNames(names), sizes };
}

/** What the store says about each job with a sidecar in the scan (as `judgeOnDisk` does for a folder). */
export async function judgeStored(
  store: BatchStore,
  scan: StoredScan,
  jobs: readonly JobOnDisk[],
): Promise<Map<string, DiskVerdict>> {
  const candidates = jobs.filter((j) => scan.sidecarsById8.has(j.id8));
  const out = new Map<string, DiskVerdict>();
  await mapLimit(candidates, 16, async (job) => {
    const v = await judgeJob(store, scan, job);
    if (v) out.set(job.id, v);
  });
  return out;
}

async function judgeJob(store: BatchStore, scan: StoredScan, job: JobOnDisk): Promise<DiskVerdict | null> {
  let own: DiskVerdict | null = null;
  let untrusted: DiskVerdict | null = null;
  for (const name of scan.sidecarsById8.get(job.id8)!) {
    const sidecar = `${IMAGES_DIR}/${name}`;
    const read = await readSidecarOf(store, sidecar, job.id);
    if (read === 'unreadable') {
      if (slugOf(name) === job.slug) untrusted ??= { kind: 'rerun', sidecar };
    } else if (read !== 'another') {
      const image = finishedImage(read);
      if (image && scan.sizes.get(image.file) === image.bytes) return { kind: 'finished', record: read };
      own ??= { kind: 'rerun', sidecar };
    }
  }
  return own ?? untrusted;
}

/** The job's record in this sidecar; a store that cannot answer throws (it must not read as "not paid"). */
async function readSidecarOf(
  store: BatchStore,
  key: string,
  jobId: string,
): Promise<ManifestRecord | 'another' | 'unreadable'> {
  const read = await readStoredSidecar(store, key);
  // Listed a moment ago and gone now counts as unreadable: it was there, so the job may have run.
  if (read.kind !== 'record') return 'unreadable';
  return read.record.id === jobId ? read.record : 'another';
}
