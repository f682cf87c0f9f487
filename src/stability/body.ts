/** Reading a response body with a cap, so a hostile or broken server cannot fill this process's memory. */
import type { Dispatcher } from 'undici';

export interface BoundedBody {
  bytes: Buffer;
  /** False when the body was longer than the limit: the rest was not read. */
  complete: boolean;
}

/**
 * One turn at a time for bodies past a size, shared by every request of a client. Several huge
 * answers at once (a hostile server's, say) then hold one limit's worth plus `largeBytes` each,
 * instead of a whole limit each. A body waiting for its turn is not read (the server is held back
 * by TCP); the holder waits on nothing, so the turn always comes back.
 */
export interface LargeBodyTurn {
  readonly largeBytes: number;
  /** Resolves with the release function; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void>;
}

export function createLargeBodyTurn(largeBytes: number): LargeBodyTurn {
  let held = false;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else held = false;
  };
  return {
    largeBytes,
    acquire(signal) {
      if (!held) {
        held = true;
        return Promise.resolve(release);
      }
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          waiting.splice(waiting.indexOf(grant), 1);
          reject(signal?.reason);
        };
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        };
        if (signal?.aborted) return reject(signal.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        waiting.push(grant);
      });
    },
  };
}

export interface ReadOptions {
  declaredLength?: string | undefined;
  /**
   * The caller needs all of it, as for an image: a declared Content-Length over the limit is refused
   * before a byte is read, and an overlong body keeps no bytes. Without it, the start of the body is
   * kept (enough of an error body to classify it).
   */
  whole?: boolean;
  /** Taken before reading past its `largeBytes`. */
  turn?: LargeBodyTurn;
  signal?: AbortSignal;
}

/**
 * Reads at most `limit` bytes of `body`. Past the limit the stream is destroyed at once (the
 * connection is dropped rather than drained), so no more than `limit` bytes are ever held.
 */
export async function readBounded(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  opts: ReadOptions = {},
): Promise<BoundedBody> {
  const declared = opts.declaredLength === undefined ? NaN : Number(opts.declaredLength);
  if (opts.whole && declared > limit) {
    body.destroy();
    return { bytes: Buffer.alloc(0), complete: false };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let release: (() => void) | undefined;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (size + chunk.length > limit) {
        // Leaving the loop destroys the stream: nothing more is buffered.
        if (opts.whole) return { bytes: Buffer.alloc(0), complete: false };
        chunks.push(chunk.subarray(0, limit - size));
        return { bytes: Buffer.concat(chunks, limit), complete: false };
      }
      if (opts.turn && !release && size + chunk.length > opts.turn.largeBytes)
        release = await opts.turn.acquire(opts.signal);
      chunks.push(chunk);
      size += chunk.length;
    }
    // Joined while the turn is held: the copy is the moment of most memory.
    return { bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), complete: true };
  } finally {
    release?.();
  }
}
