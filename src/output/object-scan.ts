import {
  scanNames,
  verdictFrom,
  type BatchScan,
  type DiskVerdict,
  type JobOnDisk,
  type SidecarRead,
} from './batch-scan.js';
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
  // Nearly always one sidecar under a job's digits: read them all, then judge as a folder does.
  const reads: SidecarRead[] = [];
  for (const name of scan.sidecarsById8.get(job.id8)!) {
    reads.push({ name, read: await readSidecarOf(store, `${IMAGES_DIR}/${name}`, job.id) });
  }
  return verdictFrom(job, reads, (record) => {
    const image = finishedImage(record);
    return image !== null && scan.sizes.get(image.file) === image.bytes;
  });
}

/** The job's record in this sidecar; a store that cannot answer throws (it must not read as "not paid"). */
async function readSidecarOf(store: BatchStore, key: string, jobId: string): Promise<SidecarRead['read']> {
  const read = await readStoredSidecar(store, key);
  // Listed a moment ago and gone now counts as unreadable: it was there, so the job may have run.
  if (read.kind !== 'record') return 'unreadable';
  return read.record.id === jobId ? read.record : 'another';
}
