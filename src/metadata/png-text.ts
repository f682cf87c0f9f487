import { inflateSync } from 'node:zlib';
import { crc32 } from './crc32.js';
import { pngChunk } from './png-chunk.js';

/**
 * PNG text chunks (PNG spec §11.3.4): how an image carries its generation parameters so
 * other Stable Diffusion tools (A1111, ComfyUI, image viewers) can show and re-run it.
 */

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const TEXT_TYPES = new Set(['tEXt', 'iTXt', 'zTXt']);

export function isPng(buf: Buffer): boolean {
  return buf.length >= 8 && buf.subarray(0, 8).equals(PNG_SIGNATURE);
}

interface ChunkRef {
  type: string;
  /** Offset of the chunk's length field. */
  start: number;
  /** Offset just past its CRC. */
  end: number;
  data: Buffer;
}

/** Walks the chunks after the signature; stops at IEND or where the structure breaks. */
function* chunks(png: Buffer): Generator<ChunkRef> {
  let off = 8;
  while (off + 12 <= png.length) {
    const len = png.readUInt32BE(off);
    const end = off + 12 + len;
    if (len > 0x7fffffff || end > png.length) return;
    const type = png.toString('latin1', off + 4, off + 8);
    yield { type, start: off, end, data: png.subarray(off + 8, off + 8 + len) };
    if (type === 'IEND') return;
    off = end;
  }
}

function crcOk(png: Buffer, c: ChunkRef): boolean {
  return crc32(png.subarray(c.start + 4, c.end - 4)) === png.readUInt32BE(c.end - 4);
}

/** Throws unless `png` starts with the PNG signature and a well-formed IHDR. */
export function assertPngHeader(png: Buffer): ChunkRef {
  if (!isPng(png)) throw new Error('not a PNG: bad signature');
  const first = chunks(png).next();
  if (first.done || first.value.type !== 'IHDR' || first.value.data.length !== 13) {
    throw new Error('not a PNG: IHDR missing or malformed');
  }
  const ihdr = first.value;
  if (!crcOk(png, ihdr)) throw new Error('not a PNG: IHDR CRC mismatch');
  if (ihdr.data.readUInt32BE(0) === 0 || ihdr.data.readUInt32BE(4) === 0)
    throw new Error('not a PNG: zero width or height');
  return ihdr;
}

/** Keywords: 1–79 printable Latin-1 characters, no leading, trailing or double spaces. */
function checkKeyword(key: string): void {
  if (
    key.length < 1 ||
    key.length > 79 ||
    !/^[\x20-\x7e\xa1-\xff]+$/.test(key) ||
    key.startsWith(' ') ||
    key.endsWith(' ') ||
    key.includes('  ')
  ) {
    throw new Error(`invalid PNG text keyword: ${JSON.stringify(key)}`);
  }
}

/** Every code unit fits one byte (NULs are removed before this is asked). */
function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

function textChunk(key: string, value: string): Buffer {
  checkKeyword(key);
  // NUL separates fields in text chunks and cannot appear in the text itself.
  const text = value.replace(/\0/g, '');
  if (isLatin1(text)) {
    return pngChunk('tEXt', Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]));
  }
  // iTXt: keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8 text.
  return pngChunk(
    'iTXt',
    Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(text, 'utf8')]),
  );
}

function chunkKeyword(data: Buffer): string | null {
  const nul = data.indexOf(0);
  return nul <= 0 ? null : data.toString('latin1', 0, nul);
}

/**
 * `png` with one text chunk per entry right after IHDR (`tEXt` when the text is Latin-1, else
 * `iTXt`, UTF-8, uncompressed); existing text chunks with the same keywords are dropped, so readers
 * that keep the last one see ours. As pieces: views into `png` around the new chunks, so a worker
 * holding 32 images of 1.5 MB does not hold a second copy of each while writing it.
 */
export function pngTextParts(png: Buffer, entries: Record<string, string>): Buffer[] {
  const ihdr = assertPngHeader(png);
  const added = Object.entries(entries).map(([k, v]) => textChunk(k, v));
  const keys = new Set(Object.keys(entries));
  const parts: Buffer[] = [png.subarray(0, ihdr.end), ...added];
  let off = ihdr.end;
  for (const c of chunks(png)) {
    if (c.start < ihdr.end) continue;
    if (TEXT_TYPES.has(c.type)) {
      const kw = chunkKeyword(c.data);
      if (kw !== null && keys.has(kw)) {
        parts.push(png.subarray(off, c.start));
        off = c.end;
      }
    }
  }
  parts.push(png.subarray(off)); // the rest verbatim, trailing bytes included
  return parts;
}

/** How much text a reader takes from a PNG: a 1 MB zTXt chunk can inflate to gigabytes. */
export interface TextLimits {
  /** Only these keywords are decoded (default: every one). */
  keys?: ReadonlySet<string>;
  /** Most bytes one chunk's text may inflate to. Default 1 MiB. */
  maxChunkBytes?: number;
  /** Most bytes all chunks together may inflate to. Default 8 MiB. */
  maxTotalBytes?: number;
}

export interface PngText {
  /** Keyword → text; the last chunk of a keyword wins. */
  text: Record<string, string>;
  /** Keywords whose text was left out: it is (or inflates to) more than the limits allow. */
  oversized: string[];
}

const DEFAULT_CHUNK_TEXT = 1024 * 1024;
const DEFAULT_TOTAL_TEXT = 8 * 1024 * 1024;

class TextBudget {
  private left: number;
  readonly oversized: string[] = [];
  constructor(
    readonly perChunk: number,
    total: number,
  ) {
    this.left = total;
  }

  /** Inflates within the budget; null (and the keyword noted) when it would not fit. */
  inflate(key: string, data: Buffer): Buffer | null {
    const limit = Math.min(this.perChunk, this.left);
    try {
      const out = inflateSync(data, { maxOutputLength: Math.max(1, limit) });
      if (out.length > limit) throw new RangeError('over the limit');
      this.left -= out.length;
      return out;
    } catch (err) {
      // Only an output over the limit is "oversized"; a corrupt stream is skipped like a bad CRC.
      if (err instanceof RangeError) {
        this.oversized.push(key);
        return null;
      }
      throw err;
    }
  }

  /** Uncompressed text counts against the same limits: it is parsed and kept like the rest. */
  plain(key: string, data: Buffer): Buffer | null {
    if (data.length > Math.min(this.perChunk, this.left)) {
      this.oversized.push(key);
      return null;
    }
    this.left -= data.length;
    return data;
  }
}

function decodeText(
  type: string,
  data: Buffer,
  budget: TextBudget,
  keys?: ReadonlySet<string>,
): [string, string] | null {
  const nul = data.indexOf(0);
  if (nul <= 0) return null;
  const key = data.toString('latin1', 0, nul);
  if (keys !== undefined && !keys.has(key)) return null;
  const rest = data.subarray(nul + 1);
  if (type === 'tEXt') {
    const out = budget.plain(key, rest);
    return out === null ? null : [key, out.toString('latin1')];
  }
  if (type === 'zTXt') {
    if (rest.length < 1 || rest[0] !== 0) return null;
    const out = budget.inflate(key, rest.subarray(1));
    return out === null ? null : [key, out.toString('latin1')];
  }
  // iTXt
  if (rest.length < 2) return null;
  const compressed = rest[0] === 1;
  const langEnd = rest.indexOf(0, 2);
  const transEnd = langEnd < 0 ? -1 : rest.indexOf(0, langEnd + 1);
  if (transEnd < 0) return null;
  const body = rest.subarray(transEnd + 1);
  const out = compressed ? budget.inflate(key, body) : budget.plain(key, body);
  return out === null ? null : [key, out.toString('utf8')];
}

/**
 * The tEXt, iTXt and zTXt chunks of `png` (the last one of a keyword wins, as in PIL), inflating
 * compressed ones only within `limits`. Chunks with a bad CRC or that fail to decode are skipped; a
 * truncated file yields what precedes the damage. Throws only when `png` is not a PNG at all.
 */
export function readPngText(png: Buffer, limits: TextLimits = {}): PngText {
  if (!isPng(png)) throw new Error('not a PNG: bad signature');
  const budget = new TextBudget(limits.maxChunkBytes ?? DEFAULT_CHUNK_TEXT, limits.maxTotalBytes ?? DEFAULT_TOTAL_TEXT);
  const text: Record<string, string> = {};
  for (const c of chunks(png)) {
    if (!TEXT_TYPES.has(c.type) || !crcOk(png, c)) continue;
    try {
      const kv = decodeText(c.type, c.data, budget, limits.keys);
      if (kv) text[kv[0]] = kv[1];
    } catch {
      // A corrupt compressed stream: skip this chunk, keep the others.
    }
  }
  return { text, oversized: budget.oversized };
}
