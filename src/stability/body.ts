/** Reading a response body with a cap, so a hostile or broken server cannot fill this process's memory. */
import type { Dispatcher } from 'undici';

export interface BoundedBody {
  bytes: Buffer;
  /** False when the body was longer than the limit: the rest was not read. */
  complete: boolean;
}

/**
 * Reads at most `limit` bytes of `body`. Past the limit the stream is destroyed at once (the
 * connection is dropped rather than drained), so no more than `limit` bytes are ever held.
 * With `whole` (the caller needs all of it, as for an image), a declared Content-Length over the
 * limit is refused before a byte is read, and an overlong body keeps no bytes; without it, the
 * start of the body is kept (enough of an error body to classify it).
 */
export async function readBounded(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  opts: { declaredLength?: string | undefined; whole?: boolean } = {},
): Promise<BoundedBody> {
  const declared = opts.declaredLength === undefined ? NaN : Number(opts.declaredLength);
  if (opts.whole && declared > limit) {
    body.destroy();
    return { bytes: Buffer.alloc(0), complete: false };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > limit) {
      // Leaving the loop destroys the stream: nothing more is buffered.
      if (opts.whole) return { bytes: Buffer.alloc(0), complete: false };
      chunks.push(chunk.subarray(0, limit - size));
      return { bytes: Buffer.concat(chunks, limit), complete: false };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), complete: true };
}
