/**
 * A tiny baseline JPEG encoder for placeholder images: each 8×8 block is one flat colour, so
 * only DC coefficients are coded (every AC run is a bare end-of-block). That keeps the encoder
 * a few dozen lines while the output stays a real JFIF file any decoder opens.
 */

export type Rgb = readonly [number, number, number];

function segment(marker: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(0xff00 | marker, 0);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }
  private flushByte(): void {
    this.bytes.push(this.acc);
    // Byte stuffing: a 0xFF in entropy-coded data must be followed by 0x00.
    if (this.acc === 0xff) this.bytes.push(0);
    this.acc = 0;
    this.n = 0;
  }
  finish(): Buffer {
    // Pad the last byte with 1-bits, as the standard requires.
    while (this.n !== 0) this.write(1, 1);
    return Buffer.from(this.bytes);
  }
}

const clamp = (v: number): number => Math.max(0, Math.min(255, Math.round(v)));

function toYCbCr([r, g, b]: Rgb): [number, number, number] {
  return [
    clamp(0.299 * r + 0.587 * g + 0.114 * b),
    clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
    clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b),
  ];
}

/**
 * Encode a (blocksW*8)×(blocksH*8) JPEG where block (bx, by) has colour `colour(bx, by)`.
 * The comment goes into a COM segment; `extraComments` are appended as more COM segments.
 */
export function encodeBlockJpeg(
  blocksW: number,
  blocksH: number,
  colour: (bx: number, by: number) => Rgb,
  comment: string,
): Buffer {
  const w = blocksW * 8;
  const h = blocksH * 8;
  const app0 = segment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  const com = segment(0xfe, Buffer.from(comment, 'latin1').subarray(0, 65000));
  // Quantisation table of all ones: the DC coefficient is stored exactly.
  const dqt = segment(0xdb, Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 1)]));
  const sof = Buffer.alloc(15);
  sof[0] = 8;
  sof.writeUInt16BE(h, 1);
  sof.writeUInt16BE(w, 3);
  sof[5] = 3;
  for (let c = 0; c < 3; c++) sof.set([c + 1, 0x11, 0], 6 + c * 3);
  // DC table: the 12 size categories all get 4-bit codes 0000..1011 (canonical order).
  const dcBits = Buffer.alloc(16);
  dcBits[3] = 12;
  const dht = segment(
    0xc4,
    Buffer.concat([
      Buffer.from([0x00]),
      dcBits,
      Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
      // AC table: a single symbol, end-of-block (0x00), with the 1-bit code 0.
      Buffer.from([0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]),
    ]),
  );
  const sos = segment(0xda, Buffer.from([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]));

  const bw = new BitWriter();
  const prev = [0, 0, 0];
  for (let by = 0; by < blocksH; by++) {
    for (let bx = 0; bx < blocksW; bx++) {
      const ycc = toYCbCr(colour(bx, by));
      for (let c = 0; c < 3; c++) {
        // Flat block: F(0,0) = 8 * (level - 128); the quantiser is 1.
        const dc = 8 * (ycc[c]! - 128);
        const diff = dc - prev[c]!;
        prev[c] = dc;
        const size = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
        bw.write(size, 4);
        if (size > 0) bw.write(diff > 0 ? diff : diff + (1 << size) - 1, size);
        bw.write(0, 1); // end of block
      }
    }
  }
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    app0,
    com,
    dqt,
    segment(0xc0, sof),
    dht,
    sos,
    bw.finish(),
    Buffer.from([0xff, 0xd9]),
  ]);
}

/** COM segments totalling about `bytes` bytes, to pad a JPEG; inserted after SOI. */
export function jpegPadding(bytes: number): Buffer {
  const parts: Buffer[] = [];
  let left = bytes;
  while (left > 4) {
    const n = Math.min(65533, left - 4);
    parts.push(segment(0xfe, Buffer.alloc(n, 0x20)));
    left -= n + 4;
  }
  return Buffer.concat(parts);
}
