/**
 * The Redis Cluster hash slot of a key, as the server computes it (CLUSTER KEYSLOT): CRC16 (XMODEM)
 * of the key's hash tag (the text inside the first non-empty `{…}`) or of the whole key, mod 16384.
 */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The part of a key that decides its slot. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

export function keySlot(key: string): number {
  return crc16(new TextEncoder().encode(hashTagOf(key))) % 16384;
}
