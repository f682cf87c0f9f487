/** Files an attacker or a careless colleague might hand nightshift, built cheaply. */
import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import { pngChunk, tinyPng } from '../output-fixtures.js';

const MiB = 1024 * 1024;

/** adler32 of `n` bytes all equal to `c` (the zlib trailer), without touching n bytes. */
function adler32OfRun(n: bigint, c: bigint): number {
  const a = (1n + n * c) % 65521n;
  const b = (n + (c * n * (n + 1n)) / 2n) % 65521n;
  return Number((b << 16n) | a);
}

/**
 * A zlib stream that inflates to `mib` MiB of 'a' from about `mib` KB: one flushed deflate block of
 * 1 MiB repeated (every such block after the first is the same bytes), so building it costs
 * nothing like compressing a gigabyte.
 */
export async function zlibBomb(mib: number): Promise<Buffer> {
  const d = zlib.createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  d.on('data', (b: Buffer) => out.push(b));
  const piece = Buffer.alloc(MiB, 0x61);
  const marks: number[] = [];
  for (let i = 0; i < 3; i++) {
    d.write(piece);
    await new Promise<void>((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
    marks.push(Buffer.concat(out).length);
  }
  d.destroy();
  const all = Buffer.concat(out);
  const first = all.subarray(0, marks[0]);
  const block = all.subarray(marks[0], marks[1]);
  if (!block.equals(all.subarray(marks[1], marks[2]))) throw new Error('deflate blocks differ: cannot repeat');
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(adler32OfRun(BigInt(mib) * BigInt(MiB), 0x61n) >>> 0);
  const blocks = Array.from({ length: mib - 1 }, () => block);
  // 78 DA: zlib header (deflate, 32 KiB window, best compression); 03 00: an empty final block.
  return Buffer.concat([Buffer.from([0x78, 0xda]), first, ...blocks, Buffer.from([0x03, 0x00]), trailer]);
}

/** A `parameters` zTXt chunk that inflates to `mib` MiB. */
export async function zTXtBombChunk(mib: number): Promise<Buffer> {
  return pngChunk('zTXt', Buffer.concat([Buffer.from('parameters\0\0', 'latin1'), await zlibBomb(mib)]));
}

/** A PNG whose `parameters` zTXt chunk inflates to `mib` MiB. */
export async function zTXtBombPng(mib: number): Promise<Buffer> {
  return tinyPng(3, 2, [await zTXtBombChunk(mib)]);
}

/** A PNG with a `parameters` tEXt chunk of about `bytes` bytes that the A1111 regex backtracks on. */
export function longParametersPng(bytes: number): Buffer {
  const text = `a prompt\nSteps: 1, CFG scale: 7, Seed: 1, ${'a'.repeat(bytes)}`;
  return tinyPng(3, 2, [pngChunk('tEXt', Buffer.concat([Buffer.from('parameters\0'), Buffer.from(text, 'latin1')]))]);
}

export function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}
