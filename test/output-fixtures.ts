import { crc32, deflateSync } from 'node:zlib';
import type { JobData } from '../src/queue/job-data.js';
import type { ManifestRecord } from '../src/output/record.js';
import { imageFileName } from '../src/output/paths.js';
import { prepareImage, type SavedImage, type SaveJob } from '../src/output/image-writer.js';
import { writeFileAtomic } from '../src/output/atomic.js';
import { resolveInBatch, sidecarPathFor } from '../src/output/paths.js';
import { sidecarText } from '../src/output/sidecar.js';

/** Shared helpers of the test/output-*.test.ts files. */

/** A chunk built with zlib's own CRC, independent of src/png/crc32.ts. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** A valid w×h 8-bit RGB PNG (a gradient), built by hand with zlib. */
export function tinyPng(w = 3, h = 2, extraChunks: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.alloc(h * (1 + w * 3));
  for (let y = 0; y < h; y++) {
    raw[y * (1 + w * 3)] = 0; // filter: none
    for (let x = 0; x < w * 3; x++) raw[y * (1 + w * 3) + 1 + x] = (x * 40 + y * 90) & 0xff;
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...extraChunks,
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

export interface ChunkInfo {
  type: string;
  data: Buffer;
  crcOk: boolean;
}

/** Every chunk of a PNG, with an independent CRC check. */
export function listChunks(png: Buffer): ChunkInfo[] {
  const out: ChunkInfo[] = [];
  let off = 8;
  while (off + 12 <= png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    const crcOk = crc32(png.subarray(off + 4, off + 8 + len)) >>> 0 === png.readUInt32BE(off + 8 + len);
    out.push({ type, data, crcOk });
    off += 12 + len;
  }
  return out;
}

export function makeJob(over: Partial<JobData> & { id?: string } = {}): JobData & { id: string } {
  const index = over.index ?? 1;
  const prompt = over.prompt ?? 'anime sunset, vivid colors, by the sea';
  const id = over.id ?? `test--${String(index).padStart(24, '0')}`;
  return {
    v: 1,
    batch: 'test',
    api: 'mock',
    source: 'prompts/test.txt',
    line: index,
    index,
    sample: 0,
    prompt,
    negative_prompt: null,
    model: 'core',
    params: { aspect_ratio: '1:1', output_format: 'png' },
    seed: 1234,
    credits: 3,
    file: imageFileName(index, prompt, id.slice(-8).replace(/[^A-Za-z0-9]/g, 'x'), 'png'),
    rate_limited: 0,
    maybe_billed: 0,
    storage_delays: 0,
    ...over,
    id,
  };
}

export function makeRecord(
  over: Partial<ManifestRecord> = {},
  job = makeJob({ index: over.index ?? 1 }),
): ManifestRecord {
  return {
    id: job.id,
    batch: job.batch,
    source: job.source,
    line: job.line,
    index: job.index,
    sample: job.sample,
    prompt: job.prompt,
    negative_prompt: job.negative_prompt,
    model: job.model,
    params: job.params,
    seed: job.seed,
    status: 'succeeded',
    file: job.file,
    bytes: 100,
    sha256: 'a'.repeat(64),
    credits: 3,
    attempts: 1,
    started_at: '2024-05-01T00:00:00.000Z',
    finished_at: '2024-05-01T00:00:08.000Z',
    duration_ms: 8000,
    error: null,
    ...over,
  };
}

/** Writes an image as a worker does (its text chunks, one atomic write), for the tests of what reads it. */
export async function saveImage(
  dir: string,
  job: SaveJob,
  bytes: Buffer,
  meta: { seed: number; mime: string },
): Promise<SavedImage> {
  const img = prepareImage(dir, job, bytes, meta);
  await writeFileAtomic(img.target, img.parts);
  return { file: img.file, bytes: img.bytes, sha256: img.sha256 };
}

/** Writes the sidecar of the job whose image is `intendedFile` as a worker does; returns its path. */
export async function writeSidecar(batchDir: string, intendedFile: string, record: ManifestRecord): Promise<string> {
  const target = resolveInBatch(batchDir, sidecarPathFor(intendedFile));
  await writeFileAtomic(target, sidecarText(record));
  return target;
}
