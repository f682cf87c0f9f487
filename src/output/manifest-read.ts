import { createHash } from 'node:crypto';
import { tooDeepJson } from '../prompts/json-depth.js';
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile, readChunks, type Opened, type OpenRefusal } from '../regular-file.js';
import { manifestRecordSchema, type ManifestRecord } from './record.js';

/**
 * Reading back what is in a batch folder without trusting it: the manifest a line at a time (a
 * damaged or hostile line is counted and skipped, never fatal), and an image's bytes only when it
 * is a regular file in the folder, not a link to one elsewhere.
 */

/** Far beyond any batch (100,000 jobs make some 60 MB of manifest). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024 * 1024;

function parseLine(text: string): ManifestRecord | null {
  if (tooDeepJson(text) !== null) return null;
  try {
    const r = manifestRecordSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Folds one line into the records (a Map keeps an id's first position while its value updates). */
function takeLine(raw: string, byId: Map<string, ManifestRecord>): boolean {
  const line = raw.trim();
  if (line === '') return true;
  let rec = parseLine(line);
  const ok = rec !== null;
  // A partial line followed by a whole one glued to it (the next append after a cut-short
  // write): recover the whole one, which starts where the last '{"id":' does.
  if (rec === null) {
    const at = line.lastIndexOf('{"id":');
    if (at > 0) rec = parseLine(line.slice(at));
  }
  if (rec !== null) byId.set(rec.id, rec);
  return ok;
}

/**
 * The records of an open manifest, read a chunk at a time: the last record per id, in order of each
 * id's first appearance, and how many lines were not a valid record.
 */
export async function manifestLines(
  fh: FileHandle,
): Promise<{ records: ManifestRecord[]; badLines: number; truncatedTail: boolean }> {
  const byId = new Map<string, ManifestRecord>();
  let badLines = 0;
  let carry = '';
  // Not fatal: a line cut inside a character is a bad line like any other.
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of readChunks(fh, MAX_MANIFEST_BYTES)) {
    const lines = (carry + decoder.decode(chunk, { stream: true })).split('\n');
    carry = lines.pop()!;
    for (const l of lines) if (!takeLine(l, byId)) badLines++;
  }
  carry += decoder.decode();
  if (!takeLine(carry, byId)) badLines++;
  return { records: [...byId.values()], badLines, truncatedTail: carry !== '' };
}

/** An image's size and sha256 when it is a regular file (not a link, FIFO or device); else why not. */
export async function hashImage(
  abs: string,
  maxBytes: number,
): Promise<{ ok: true; size: number; sha256: string } | OpenRefusal> {
  const opened: Opened | OpenRefusal = await openRegularFile(abs, { maxBytes, noFollow: true });
  if (!opened.ok) return opened;
  try {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of readChunks(opened.fh, maxBytes)) {
      hash.update(chunk);
      size += chunk.length;
    }
    return { ok: true, size, sha256: hash.digest('hex') };
  } finally {
    await opened.fh.close().catch(() => {});
  }
}
