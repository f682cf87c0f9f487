import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/metadata/crc32.js';
import { pngChunk } from '../src/metadata/png-chunk.js';
import { placeholderBytes } from './helpers/images.js';
import { checkImage, MAX_SIDE } from '../src/stability/image-check.js';
import type { ImageMime } from '../src/stability/types.js';

const png = (padTo?: number) => placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'png', padTo });
const jpeg = (padTo?: number) => placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'jpeg', padTo });
const webp = () => placeholderBytes({ model: 'core', prompt: 'p', seed: 1, format: 'webp' });

function expectBad(bytes: Buffer, mime: ImageMime, reason: RegExp) {
  const r = checkImage(bytes, mime);
  expect(r.ok, `${mime} should fail`).toBe(false);
  if (!r.ok) expect(r.reason).toMatch(reason);
}

/** The PNG with IHDR width and height replaced; `fixCrc` keeps the CRC right so only the size is wrong. */
function pngWithSize(width: number, height: number, fixCrc = true): Buffer {
  const b = Buffer.from(png());
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  if (fixCrc) b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return b;
}

/** A minimal lossy WebP container: RIFF, a VP8 key-frame header with the given size, no real data. */
function vp8(width: number, height: number): Buffer {
  const data = Buffer.alloc(10);
  data.set([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]); // key frame tag, start code
  data.writeUInt16LE(width, 6);
  data.writeUInt16LE(height, 8);
  const head = Buffer.alloc(20);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + 8 + data.length, 4);
  head.write('WEBPVP8 ', 8, 'latin1');
  head.writeUInt32LE(data.length, 16);
  return Buffer.concat([head, data]);
}

describe('checkImage: the fake API’s placeholders pass', () => {
  it.each([
    ['image/png', png(), 64, 64],
    ['image/png', png(300_000), 64, 64],
    ['image/jpeg', jpeg(), 64, 64],
    ['image/jpeg', jpeg(300_000), 64, 64],
    ['image/webp', webp(), 64, 64],
    ['image/webp', vp8(1024, 768), 1024, 768],
  ] as const)('%s (%#)', (mime, bytes, width, height) => {
    expect(checkImage(bytes, mime)).toEqual({ ok: true, width, height });
  });
});

describe('checkImage: PNG', () => {
  it('refuses a body cut anywhere before IEND', () => {
    const b = png();
    for (const n of [0, 7, 8, 20, 33, 40, b.length - 13, b.length - 1]) expectBad(b.subarray(0, n), 'image/png', /./);
  });
  it('refuses a wrong IHDR CRC, zero and huge dimensions', () => {
    expectBad(pngWithSize(64, 64, false).fill(0, 29, 33), 'image/png', /IHDR CRC/);
    expectBad(pngWithSize(0, 64), 'image/png', /dimensions 0x64/);
    expectBad(pngWithSize(64, 0), 'image/png', /dimensions/);
    expectBad(pngWithSize(MAX_SIDE + 1, 64), 'image/png', /dimensions/);
    expectBad(pngWithSize(0xffffffff, 0xffffffff), 'image/png', /dimensions/);
    expect(checkImage(pngWithSize(MAX_SIDE, 1), 'image/png').ok).toBe(true);
  });
  it('refuses magic bytes followed by garbage, a missing IHDR or IDAT, and bad colour types', () => {
    const sig = png().subarray(0, 8);
    expectBad(Buffer.concat([sig, Buffer.alloc(4096, 0x5a)]), 'image/png', /not a chunk|past the end|IHDR/);
    expectBad(Buffer.concat([sig, Buffer.alloc(4096)]), 'image/png', /not a chunk/);
    const ihdr = png().subarray(8, 33);
    const iend = pngChunk('IEND', Buffer.alloc(0));
    expectBad(Buffer.concat([sig, ihdr, iend]), 'image/png', /no IDAT/);
    expectBad(Buffer.concat([sig, pngChunk('tEXt', Buffer.from('a\0b')), iend]), 'image/png', /start with IHDR/);
    const badColour = Buffer.from(png());
    badColour[25] = 5; // colour type 5 does not exist
    badColour.writeUInt32BE(crc32(badColour.subarray(12, 29)), 29);
    expectBad(badColour, 'image/png', /colour type 5/);
    const damagedEnd = Buffer.from(png());
    damagedEnd.writeUInt8(damagedEnd.readUInt8(damagedEnd.length - 1) ^ 0xff, damagedEnd.length - 1);
    expectBad(damagedEnd, 'image/png', /IEND/);
  });
});

describe('checkImage: JPEG', () => {
  it('refuses a truncated body, garbage after SOI, and zero or huge dimensions', () => {
    const b = jpeg();
    for (const n of [0, 2, 20, 100, b.length - 1]) expectBad(b.subarray(0, n), 'image/jpeg', /./);
    expectBad(
      Buffer.concat([b.subarray(0, 2), Buffer.alloc(2048, 0x5a), Buffer.from([0xff, 0xd9])]),
      'image/jpeg',
      /marker/,
    );
    const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    const zero = Buffer.from(b);
    zero.writeUInt16BE(0, sof + 5);
    expectBad(zero, 'image/jpeg', /dimensions 64x0/);
    const huge = Buffer.from(b);
    huge.writeUInt16BE(60000, sof + 7);
    expectBad(huge, 'image/jpeg', /dimensions 60000x64/);
  });
});

describe('checkImage: WebP', () => {
  it('refuses an inconsistent RIFF size, truncation, garbage and bad dimensions', () => {
    const b = webp();
    expectBad(b.subarray(0, b.length - 2), 'image/webp', /RIFF size/);
    expectBad(Buffer.concat([b, Buffer.alloc(10)]), 'image/webp', /RIFF size/);
    const lying = Buffer.from(b);
    lying.writeUInt32LE(0x7ffffff0, 16); // VP8L chunk claims more than the file
    expectBad(lying, 'image/webp', /past the end/);
    const garbage = Buffer.concat([b.subarray(0, 12), Buffer.alloc(64, 0x5a)]);
    garbage.writeUInt32LE(garbage.length - 8, 4);
    expectBad(garbage, 'image/webp', /past the end/);
    garbage.writeUInt32LE(4, 16);
    expectBad(garbage, 'image/webp', /starts with chunk/);
    expectBad(vp8(0, 10), 'image/webp', /dimensions 0x10/);
    const notKey = vp8(10, 10);
    notKey[20] = 0x11; // an inter frame cannot start a file
    expectBad(notKey, 'image/webp', /key frame/);
  });
});

describe('checkImage: the claimed type must match the bytes', () => {
  it.each([
    [png(), 'image/jpeg'],
    [png(), 'image/webp'],
    [jpeg(), 'image/png'],
    [webp(), 'image/png'],
  ] as const)('%#: bytes of another type fail', (bytes, mime) => {
    expect(checkImage(bytes, mime).ok).toBe(false);
  });
});
