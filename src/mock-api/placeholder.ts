/**
 * Deterministic placeholder images for the fake API: the same (model, prompt, seed) always
 * gives the same bytes, so tests can compare files and reruns can be checked for duplicates.
 * All three formats are real, decodable files (PNG via zlib, a DC-only baseline JPEG, a
 * single-colour lossless WebP).
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import type { OutputFormat } from '../models.js';
import { encodeBlockJpeg, jpegPadding, type Rgb } from './tiny-jpeg.js';
import { encodeSolidWebp } from './tiny-webp.js';
import { pngChunk } from '../metadata/png-chunk.js';

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp';

/** An image as parts to write in order, so cached padding is sent without copying it. */
export interface PlaceholderImage {
  mime: ImageMime;
  parts: Buffer[];
  length: number;
}

const SIZE = 64;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const MIMES: Record<OutputFormat, ImageMime> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

export function imageHash(model: string, prompt: string, seed: number): Buffer {
  return createHash('sha256').update(`${model}\0${prompt}\0${seed}`).digest();
}

const IEND = pngChunk('IEND', Buffer.alloc(0));

function colours(h: Buffer): [Rgb, Rgb] {
  return [
    [h[0]!, h[1]!, h[2]!],
    [h[3]!, h[4]!, h[5]!],
  ];
}

function pngBody(h: Buffer, text: string): Buffer {
  const [a, b] = colours(h);
  const period = 4 + (h[6]! % 16);
  const raw = Buffer.alloc(SIZE * (1 + SIZE * 3));
  for (let y = 0; y < SIZE; y++) {
    const row = y * (1 + SIZE * 3);
    raw[row] = 0; // filter: none
    for (let x = 0; x < SIZE; x++) {
      const t = (x + y) / (2 * SIZE - 2);
      const stripe = Math.floor((x + y) / period) % 2 === 0 ? 1 : 0.8;
      for (let c = 0; c < 3; c++) raw[row + 1 + x * 3 + c] = Math.round((a[c]! * (1 - t) + b[c]! * t) * stripe);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(SIZE, 0);
  ihdr.writeUInt32BE(SIZE, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('tEXt', Buffer.from(`Comment\0${text}`, 'latin1')),
    pngChunk('IDAT', deflateSync(raw)),
  ]);
}

// Padding depends only on its length (rounded to 4 KiB), so a handful of buffers serve every request.
const paddingCache = new Map<string, Buffer>();
function padding(format: 'png' | 'jpeg', bytes: number): Buffer {
  const len = Math.floor(bytes / 4096) * 4096;
  const key = `${format}:${len}`;
  let buf = paddingCache.get(key);
  if (!buf) {
    // `nsPd`: ancillary, private, safe-to-copy chunk that decoders skip.
    buf = format === 'png' ? pngChunk('nsPd', Buffer.alloc(Math.max(0, len - 12))) : jpegPadding(len);
    paddingCache.set(key, buf);
  }
  return buf;
}

export interface PlaceholderRequest {
  model: string;
  prompt: string;
  seed: number;
  format: OutputFormat;
  /** Pad the file to about this many bytes (PNG and JPEG; WebP is never padded). */
  padTo?: number | undefined;
}

export function placeholderImage(req: PlaceholderRequest): PlaceholderImage {
  const h = imageHash(req.model, req.prompt, req.seed);
  const text = `nightshift mock model=${req.model} seed=${req.seed}`;
  let parts: Buffer[];
  if (req.format === 'png') {
    const body = pngBody(h, text);
    const pad = (req.padTo ?? 0) - body.length - IEND.length;
    parts = pad >= 4096 ? [body, padding('png', pad), IEND] : [body, IEND];
  } else if (req.format === 'jpeg') {
    const [a, b] = colours(h);
    const jpg = encodeBlockJpeg(SIZE / 8, SIZE / 8, (bx, by) => ((bx + by) % 2 === 0 ? a : b), text);
    const pad = (req.padTo ?? 0) - jpg.length;
    // Padding COM segments go after SOI and the 18-byte JFIF APP0, which must come first.
    parts = pad >= 4096 ? [jpg.subarray(0, 20), padding('jpeg', pad), jpg.subarray(20)] : [jpg];
  } else {
    parts = [encodeSolidWebp(SIZE, SIZE, colours(h)[0])];
  }
  return { mime: MIMES[req.format], parts, length: parts.reduce((n, p) => n + p.length, 0) };
}
