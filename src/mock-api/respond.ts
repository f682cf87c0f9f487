/** Writing the fake API's answers in the real API's formats (raw image bytes with headers, or JSON with base64). */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ApiFinishReason } from '../stability/types.js';
import type { ErrorReply } from './bodies.js';
import type { PlaceholderImage } from './placeholder.js';
import type { GenCall } from './validate.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendText(res: ServerResponse, text: string, headers: Record<string, string>): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, reply: ErrorReply): void {
  sendJson(res, reply.status, reply.body, reply.headers);
}

/** Writes cached parts one by one: a padded image is never copied per request. */
function sendParts(
  res: ServerResponse,
  headers: Record<string, string | number>,
  parts: Buffer[],
  length: number,
): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(200, { ...headers, 'content-length': length });
  for (const p of parts) res.write(p);
  res.end();
}

const b64 = (img: PlaceholderImage): string => Buffer.concat(img.parts, img.length).toString('base64');

export interface Outcome {
  /** One image per sample; sample i has seed `seeds[i]`. */
  images: PlaceholderImage[];
  seeds: number[];
  finish: ApiFinishReason;
  /** Sent as the first sample's seed instead of the number, verbatim (a hostile `1e21`, `-1`, `abc`). */
  rawSeed?: string | undefined;
}

/** JSON text with the first sample's seed replaced by `raw`: as a number token if it reads as one, else a string. */
function withRawSeed(body: unknown, raw: string | undefined): string {
  const text = JSON.stringify(body);
  if (raw === undefined) return text;
  let token = JSON.stringify(raw);
  try {
    if (typeof JSON.parse(raw) === 'number') token = raw.trim();
  } catch {
    // not a JSON number: sent as a string
  }
  return text.replace(`"seed":${SEED_MARK}`, `"seed":${token}`);
}
const SEED_MARK = -1.5;

export function sendGeneration(res: ServerResponse, call: GenCall, out: Outcome): void {
  const requestId = randomBytes(16).toString('hex');
  const img = out.images[0]!;
  const seed = out.rawSeed === undefined ? out.seeds[0]! : SEED_MARK;
  if (call.accept === 'image') {
    // v1 spells the headers Finish-Reason/Seed, v2beta finish-reason/seed: HTTP headers are case-insensitive.
    sendParts(
      res,
      {
        'content-type': img.mime,
        'finish-reason': out.finish,
        seed: out.rawSeed ?? String(seed),
        'x-request-id': requestId,
      },
      img.parts,
      img.length,
    );
  } else if (call.family === 'v2') {
    const body = { image: out.finish === 'ERROR' ? '' : b64(img), finish_reason: out.finish, seed };
    sendText(res, withRawSeed(body, out.rawSeed), {
      'content-type': `application/json; type=${img.mime}`,
      'x-request-id': requestId,
    });
  } else {
    const artifacts = out.images.map((im, i) => ({
      base64: out.finish === 'ERROR' ? '' : b64(im),
      seed: i === 0 ? seed : out.seeds[i],
      finishReason: out.finish,
    }));
    sendText(res, withRawSeed({ artifacts }, out.rawSeed), {
      'content-type': 'application/json',
      'x-request-id': requestId,
    });
  }
}

/** A 200 the client cannot use, in a way that fits the format asked for. */
export function sendMalformed(res: ServerResponse, call: GenCall): void {
  if (res.destroyed || res.headersSent) return;
  let ctype: string;
  let body: string;
  if (call.accept === 'image') {
    ctype = call.family === 'v1' ? 'image/png' : `image/${call.format}`;
    body = '<html><body>upstream glitch</body></html>';
  } else if (call.family === 'v2') {
    ctype = 'application/json; type=image/png';
    body = '{"image":"iVBORw0KGgoAAAANSUhEUgAA';
  } else {
    ctype = 'application/json';
    body = '{"artifacts":[{"base64":"%%% not base64 %%%","seed":1,"finishReason":"SUCCESS"}]}';
  }
  res.writeHead(200, { 'content-type': ctype, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
