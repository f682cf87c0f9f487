import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pack as tarPack, type Headers, type Pack } from 'tar-stream';
import { writeFileAtomic } from '../output/atomic.js';
import type { ManifestRecord } from '../output/record.js';
import { normalizeRecord } from '../output/sidecar.js';

/**
 * The three dataset layouts. Every file is written to a temp name and renamed into place, so an
 * interrupted export leaves whole files, and output depends only on the records: the same batch
 * exports to the same bytes.
 */

export interface Sample {
  record: ManifestRecord;
  /** The image in the batch folder, checked to be a regular file inside it. */
  source: string;
  /** `00001-a-cat-1a2b3c4d.png` */
  name: string;
  /** `00001-a-cat-1a2b3c4d`: no dots, so webdataset readers split the key from the extension. */
  key: string;
  /** `png`, `jpeg`, `webp` */
  ext: string;
}

export interface Written {
  /** Paths written, relative to the export folder. */
  files: string[];
  linked: number;
  copied: number;
}

const TEXT_OPTS = { fsync: false } as const;

/** `train/metadata.jsonl` + the images beside it: what `load_dataset("imagefolder", data_dir=…)` reads. */
export async function writeImagefolder(to: string, samples: readonly Sample[]): Promise<Written> {
  const out: Written = { files: [], linked: 0, copied: 0 };
  const lines: string[] = [];
  for (const s of samples) {
    const rel = `train/${s.name}`;
    out[await placeImage(s.source, path.join(to, rel))]++;
    out.files.push(rel);
    const r = s.record;
    lines.push(
      JSON.stringify({
        file_name: s.name,
        text: r.prompt,
        negative_prompt: r.negative_prompt,
        seed: r.seed,
        model: r.model,
        params: r.params,
        id: r.id,
        status: r.status,
      }),
    );
  }
  await writeFileAtomic(path.join(to, 'train/metadata.jsonl'), lines.map((l) => `${l}\n`).join(''), TEXT_OPTS);
  out.files.push('train/metadata.jsonl');
  return out;
}

/** Kohya-style: each image with a `.txt` of its prompt beside it. */
export async function writeCaptions(to: string, samples: readonly Sample[]): Promise<Written> {
  const out: Written = { files: [], linked: 0, copied: 0 };
  for (const s of samples) {
    out[await placeImage(s.source, path.join(to, s.name))]++;
    await writeFileAtomic(path.join(to, `${s.key}.txt`), s.record.prompt, TEXT_OPTS);
    out.files.push(s.name, `${s.key}.txt`);
  }
  return out;
}

/** Tar shards `00000.tar`, `00001.tar`, … of `shardSize` samples: image, `.txt` prompt, `.json` record. */
export async function writeWebdataset(to: string, samples: readonly Sample[], shardSize: number): Promise<Written> {
  const out: Written = { files: [], linked: 0, copied: 0 };
  await mkdir(to, { recursive: true });
  for (let i = 0, shard = 0; i < samples.length; i += shardSize, shard++) {
    const rel = `${String(shard).padStart(5, '0')}.tar`;
    await writeShard(path.join(to, rel), samples.slice(i, i + shardSize));
    out.files.push(rel);
  }
  return out;
}

async function writeShard(target: string, samples: readonly Sample[]): Promise<void> {
  const tmp = tempBeside(target);
  const tar = tarPack();
  const file = createWriteStream(tmp, { flags: 'wx' });
  const done = once(file, 'close');
  const failed = new Promise<never>((_, reject) => {
    tar.on('error', reject);
    file.on('error', reject);
  });
  failed.catch(() => {}); // raced below; a late error must not become an unhandled rejection
  tar.pipe(file);
  try {
    const work = (async () => {
      for (const s of samples) {
        // The record's own time, not the export's: the same batch must give the same bytes.
        const mtime = new Date(Math.floor(Date.parse(s.record.finished_at) / 1000) * 1000);
        await addEntry(tar, { name: `${s.key}.${s.ext}`, mtime }, await readFile(s.source));
        await addEntry(tar, { name: `${s.key}.json`, mtime }, Buffer.from(JSON.stringify(normalizeRecord(s.record))));
        await addEntry(tar, { name: `${s.key}.txt`, mtime }, Buffer.from(s.record.prompt));
      }
      tar.finalize();
      await done;
    })();
    await Promise.race([work, failed]);
    await rename(tmp, target);
  } catch (err) {
    tar.destroy();
    file.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Owner, group and mode are fixed: the archive must not depend on who ran the export. */
function addEntry(tar: Pack, h: Pick<Headers, 'name' | 'mtime'>, body: Buffer): Promise<void> {
  const header: Headers = { ...h, size: body.length, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', type: 'file' };
  return new Promise((resolve, reject) => {
    tar.entry(header, body, (err) => (err ? reject(err) : resolve()));
  });
}

/** A hard link when the export is on the same filesystem (no copy, no extra space), else a copy. */
async function placeImage(source: string, target: string): Promise<'linked' | 'copied'> {
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = tempBeside(target);
  let how: 'linked' | 'copied' = 'linked';
  try {
    await link(source, tmp);
  } catch {
    how = 'copied';
    await copyFile(source, tmp);
  }
  try {
    await rename(tmp, target);
  } finally {
    // rename() between two links to one file (a repeat export) succeeds without removing tmp.
    await rm(tmp, { force: true });
  }
  return how;
}

let seq = 0;
/** Hidden and ending in `.tmp`, so no dataset reader takes a half-written file for a sample. */
function tempBeside(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${(seq++).toString(36)}.tmp`);
}
