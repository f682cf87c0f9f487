import type { IncomingMessage } from 'node:http';

/** The real API answers 413 to requests over 10 MiB. */
const MAX_BODY = 10 * 1024 * 1024;

/** A request body, or 'too-large' (the rest is drained unread) past MAX_BODY. */
export function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.removeAllListeners('data');
        req.resume();
        resolve('too-large');
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}
