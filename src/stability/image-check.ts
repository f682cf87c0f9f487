/**
 * Is a 200's body an image of the type the answer claims? Checked from the headers and the container
 * structure, in one pass over the chunk or segment headers (linear, no decode): PNG signature, IHDR
 * (with its CRC) and chunks through IEND; JPEG SOI, a frame header and EOI; WebP's RIFF size and
 * its VP8/VP8L/VP8X header. Magic bytes followed by garbage, a cut-off body or absurd dimensions fail.
 */
import { crc32 } from '../metadata/crc32.js';
import type { ImageMime } from './types.js';

/** Largest width or height accepted: generous (the API's outputs are about 1–2.5 k px a side). */
export const MAX_SIDE = 16384;

export type ImageCheck = { ok: true; width: number; height: number } | { ok: false; reason: string };

const fail = (reason: string): ImageCheck => ({ ok: false, reason });

function dimensions(width: number, height: number, what: string): ImageCheck {
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE)
    return fail(`${what} dimensions ${width}x${height} are outside 1…${MAX_SIDE}`);
  return { ok: true, width, height };
}

export function checkImage(bytes: Buffer, mime: ImageMime): ImageCheck {
  if (mime === 'image/png') return checkPng(bytes);
  if (mime === 'image/jpeg') return checkJpeg(bytes);
  return checkWebp(bytes);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Allowed bit depths per colour type. */
const PNG_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const IEND_CRC = 0xae426082;

const isChunkType = (b: Buffer, at: number): boolean => {
  for (let i = at; i < at + 4; i++) {
    const c = b[i]! | 0x20;
    if (c < 0x61 || c > 0x7a) return false;
  }
  return true;
};

function checkIhdr(b: Buffer, at: number, length: number): ImageCheck {
  if (length !== 13) return fail(`PNG IHDR has length ${length}, not 13`);
  if (crc32(b.subarray(at + 4, at + 8 + 13)) !== b.readUInt32BE(at + 8 + 13)) return fail('PNG IHDR CRC mismatch');
  const d = at + 8;
  const [depth, colour, compression, filter, interlace] = [b[d + 8]!, b[d + 9]!, b[d + 10]!, b[d + 11]!, b[d + 12]!];
  if (!PNG_DEPTHS[colour]?.includes(depth)) return fail(`PNG IHDR colour type ${colour} with bit depth ${depth}`);
  if (compression !== 0 || filter !== 0 || interlace > 1) return fail('PNG IHDR has unknown methods');
  return dimensions(b.readUInt32BE(d), b.readUInt32BE(d + 4), 'PNG');
}

function checkPng(b: Buffer): ImageCheck {
  if (b.length < 8 || !b.subarray(0, 8).equals(PNG_SIGNATURE)) return fail('no PNG signature');
  let at = 8;
  let header: ImageCheck | undefined;
  let sawData = false;
  for (;;) {
    if (at + 12 > b.length) return fail(`PNG cut off at byte ${at} before IEND`);
    const length = b.readUInt32BE(at);
    if (length > 0x7fffffff || !isChunkType(b, at + 4)) return fail(`PNG chunk at byte ${at} is not a chunk`);
    if (at + 12 + length > b.length) return fail(`PNG chunk at byte ${at} runs past the end`);
    const type = b.toString('latin1', at + 4, at + 8);
    if (header === undefined) {
      if (type !== 'IHDR') return fail('PNG does not start with IHDR');
      header = checkIhdr(b, at, length);
      if (!header.ok) return header;
    } else if (type === 'IDAT') {
      sawData = true;
    } else if (type === 'IEND') {
      if (length !== 0 || b.readUInt32BE(at + 8) !== IEND_CRC) return fail('PNG IEND is damaged');
      return sawData ? header : fail('PNG has no IDAT');
    }
    at += 12 + length;
  }
}

/** SOF0…SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range. */
const isFrameHeader = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
/** Markers without a length: TEM and RST0…7. */
const isStandalone = (m: number): boolean => m === 0x01 || (m >= 0xd0 && m <= 0xd7);

function checkFrame(b: Buffer, at: number, length: number): ImageCheck {
  const components = b[at + 9];
  if (length < 8 || components === undefined || length !== 8 + 3 * components || components < 1 || components > 4)
    return fail(`JPEG frame header at byte ${at} is malformed`);
  return dimensions(b.readUInt16BE(at + 7), b.readUInt16BE(at + 5), 'JPEG');
}

function checkJpeg(b: Buffer): ImageCheck {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return fail('no JPEG SOI marker');
  if (b[b.length - 2] !== 0xff || b[b.length - 1] !== 0xd9) return fail('JPEG does not end with EOI (cut off?)');
  let at = 2;
  let frame: ImageCheck | undefined;
  // Walk the header segments up to the first scan; the entropy-coded data after it is not parsed.
  for (;;) {
    while (b[at] === 0xff && b[at + 1] === 0xff) at++; // fill bytes
    if (at + 4 > b.length || b[at] !== 0xff) return fail(`JPEG has no marker at byte ${at}`);
    const marker = b[at + 1]!;
    if (isStandalone(marker)) {
      at += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xd8) return fail(`JPEG has an early marker 0x${marker.toString(16)} at ${at}`);
    const length = b.readUInt16BE(at + 2);
    if (length < 2 || at + 2 + length > b.length) return fail(`JPEG segment at byte ${at} runs past the end`);
    if (isFrameHeader(marker)) {
      frame = checkFrame(b, at, length);
      if (!frame.ok) return frame;
    } else if (marker === 0xda) {
      return frame ?? fail('JPEG scan before any frame header');
    }
    at += 2 + length;
  }
}

function checkVp8(b: Buffer, at: number, size: number): ImageCheck {
  if (size < 10 || (b[at]! & 1) !== 0) return fail('WebP VP8 data is not a key frame');
  if (b[at + 3] !== 0x9d || b[at + 4] !== 0x01 || b[at + 5] !== 0x2a) return fail('WebP VP8 start code missing');
  return dimensions(b.readUInt16LE(at + 6) & 0x3fff, b.readUInt16LE(at + 8) & 0x3fff, 'WebP');
}

function checkVp8l(b: Buffer, at: number, size: number): ImageCheck {
  if (size < 5 || b[at] !== 0x2f) return fail('WebP VP8L signature missing');
  const bits = b.readUInt32LE(at + 1);
  if (bits >>> 29 !== 0) return fail('WebP VP8L has an unknown version');
  return dimensions((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1, 'WebP');
}

function checkVp8x(b: Buffer, at: number, size: number): ImageCheck {
  if (size < 10) return fail('WebP VP8X header is too short');
  return dimensions(b.readUIntLE(at + 4, 3) + 1, b.readUIntLE(at + 7, 3) + 1, 'WebP');
}

const WEBP_IMAGE_CHUNKS = new Set(['VP8 ', 'VP8L', 'ANMF']);

function checkWebp(b: Buffer): ImageCheck {
  if (b.length < 20 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WEBP')
    return fail('no RIFF/WEBP header');
  if (b.readUInt32LE(4) + 8 !== b.length) return fail(`WebP RIFF size ${b.readUInt32LE(4)} does not match the body`);
  let at = 12;
  let header: ImageCheck | undefined;
  let sawImage = false;
  while (at < b.length) {
    if (at + 8 > b.length) return fail(`WebP cut off at byte ${at}`);
    const type = b.toString('latin1', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (at + 8 + size > b.length) return fail(`WebP chunk ${JSON.stringify(type)} runs past the end`);
    if (header === undefined) {
      const check = type === 'VP8 ' ? checkVp8 : type === 'VP8L' ? checkVp8l : type === 'VP8X' ? checkVp8x : null;
      if (!check) return fail(`WebP starts with chunk ${JSON.stringify(type)}`);
      header = check(b, at + 8, size);
      if (!header.ok) return header;
    }
    if (WEBP_IMAGE_CHUNKS.has(type)) sawImage = true;
    at += 8 + size + (size & 1);
  }
  if (at !== b.length) return fail('WebP chunks do not end with the body');
  return header && sawImage ? header : fail('WebP has no image data');
}
