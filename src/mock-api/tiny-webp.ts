/**
 * A tiny lossless WebP (VP8L) of one solid colour. Each of the five prefix codes is a
 * "simple" code with a single symbol, which the format decodes with zero bits per pixel,
 * so the whole image is a few header bits whatever its size.
 */

class LsbBitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(value: number, bits: number): void {
    for (let i = 0; i < bits; i++) {
      this.acc |= ((value >>> i) & 1) << this.n;
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  finish(): Buffer {
    if (this.n > 0) this.bytes.push(this.acc);
    return Buffer.from(this.bytes);
  }
}

export function encodeSolidWebp(width: number, height: number, rgb: readonly [number, number, number]): Buffer {
  const bw = new LsbBitWriter();
  bw.write(0x2f, 8); // VP8L signature
  bw.write(width - 1, 14);
  bw.write(height - 1, 14);
  bw.write(0, 1); // alpha_is_used
  bw.write(0, 3); // version
  bw.write(0, 1); // no transform
  bw.write(0, 1); // no colour cache
  bw.write(0, 1); // no meta prefix codes
  // Prefix codes in order green, red, blue, alpha, distance: simple, 1 symbol.
  for (const symbol of [rgb[1], rgb[0], rgb[2], 255]) {
    bw.write(1, 1); // simple code
    bw.write(0, 1); // num_symbols - 1
    bw.write(1, 1); // is_first_8bits
    bw.write(symbol, 8);
  }
  bw.write(1, 1);
  bw.write(0, 1);
  bw.write(0, 1); // 1-bit symbol
  bw.write(0, 1); // distance symbol 0
  let data = bw.finish();
  const chunkLen = data.length;
  if (data.length % 2 === 1) data = Buffer.concat([data, Buffer.alloc(1)]);
  const head = Buffer.alloc(20);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + 8 + data.length, 4);
  head.write('WEBP', 8, 'latin1');
  head.write('VP8L', 12, 'latin1');
  head.writeUInt32LE(chunkLen, 16);
  return Buffer.concat([head, data]);
}
