/**
 * Hostile answers for the fake API: what a broken or malicious server (or a proxy in front of
 * one) might send. Each is a Fault kind, so tests pick them per request, and most have a name
 * for `nightshift mock-api --fault`.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { errorReply, withId, MSG, type ErrorReply, type Family } from './bodies.js';
import { sendError } from './respond.js';
import type { EchoPlace, Fault } from './types.js';
import type { GenCall } from './validate.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const DEFAULT_HUGE = 512 * 1024 * 1024;
const FILL_CHUNK = 1024 * 1024;
/** A message this long before the echo puts the key across a 300-character cut (19 characters in). */
const LONG_PREFIX = 281 - 'Bearer '.length;

type StatusFault = Extract<Fault, { status: number }>;
type HostileFault = Extract<Fault, { kind: 'echo-key' | 'huge' | 'png-garbage' }>;

export interface HostileContext {
  family: Family;
  /** The generation asked for; undefined on balance and engine-list requests. */
  call: GenCall | undefined;
  /** The request's Authorization header, as received. */
  authorization: string;
}

/** The answer for a fault with a status, in the API's error shape. */
export function statusFaultReply(family: Family, f: StatusFault): ErrorReply {
  const name =
    f.name ?? (f.status === 429 ? 'rate_limit_exceeded' : f.status >= 500 ? 'internal_error' : 'bad_request');
  const reply = errorReply(
    family,
    f.status,
    name,
    f.message ?? (f.status >= 500 ? MSG.serverError : `injected ${f.status}`),
  );
  const retryAfter = f.retryAfter ?? (f.retryAfterSec === undefined ? undefined : String(f.retryAfterSec));
  if (retryAfter !== undefined) reply.headers = { 'retry-after': retryAfter };
  return reply;
}

export const isHostile = (f: Fault | undefined): f is HostileFault =>
  f !== undefined && 'kind' in f && (f.kind === 'echo-key' || f.kind === 'huge' || f.kind === 'png-garbage');

/**
 * Sends a hostile answer. Generation-only kinds (`huge`, `png-garbage`) on a request that is not
 * a generation answer nothing and return false, so the request is served normally.
 */
export async function answerHostile(res: ServerResponse, f: HostileFault, ctx: HostileContext): Promise<boolean> {
  if (f.kind === 'echo-key') {
    sendEcho(res, f.in, f.status ?? (f.in === 'text' ? 502 : 400), ctx);
    return true;
  }
  if (!ctx.call) return false;
  if (f.kind === 'huge')
    await streamHuge(res, ctx.call, { total: f.bytes ?? DEFAULT_HUGE, chunked: f.chunked ?? false });
  else sendImageBytes(res, ctx.call, Buffer.concat([PNG_SIGNATURE, randomBytes(4096)]));
  return true;
}

function sendEcho(res: ServerResponse, place: EchoPlace, status: number, ctx: HostileContext): void {
  const auth = ctx.authorization;
  const key = auth.replace(/^Bearer\s+/i, '');
  if (place === 'text') {
    if (res.headersSent || res.destroyed) return;
    const body = `<html><body><h1>${status} Bad Gateway</h1><p>upstream refused Authorization: ${auth}</p></body></html>`;
    res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const filler = 'the request could not be processed as sent; '.repeat(10).slice(0, LONG_PREFIX);
  const reply =
    place === 'name'
      ? errorReply(ctx.family, status, auth, 'invalid request')
      : place === 'id'
        ? withId(errorReply(ctx.family, status, 'bad_request', 'invalid request'), key)
        : place === 'message'
          ? errorReply(ctx.family, status, 'bad_request', `the key ${auth} may not be used here`)
          : errorReply(ctx.family, status, 'bad_request', `${filler}${auth}`);
  sendError(res, reply);
}

/** A 200 carrying `image` as the format asked for would: raw bytes claimed as PNG, or base64 in JSON. */
function sendImageBytes(res: ServerResponse, call: GenCall, image: Buffer): void {
  if (res.headersSent || res.destroyed) return;
  const seed = call.seed || 1;
  let ctype = 'image/png';
  let body: Buffer | string = image;
  if (call.accept === 'json' && call.family === 'v2') {
    ctype = 'application/json; type=image/png';
    body = JSON.stringify({ image: image.toString('base64'), finish_reason: 'SUCCESS', seed });
  } else if (call.accept === 'json') {
    ctype = 'application/json';
    body = JSON.stringify({ artifacts: [{ base64: image.toString('base64'), seed, finishReason: 'SUCCESS' }] });
  }
  res.writeHead(200, { 'content-type': ctype, 'content-length': Buffer.byteLength(body), seed: String(seed) });
  res.end(body);
}

const fills = new Map<number, Buffer>();
function fill(byte: number): Buffer {
  let b = fills.get(byte);
  if (!b) fills.set(byte, (b = Buffer.alloc(FILL_CHUNK, byte)));
  return b;
}

/** Resolves when the socket can take more, or is gone. */
const writable = (res: ServerResponse): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });

/** Streams `total` bytes from one reused chunk, respecting backpressure; stops when the client hangs up. */
async function streamHuge(res: ServerResponse, call: GenCall, opts: { total: number; chunked: boolean }) {
  if (res.headersSent || res.destroyed) return;
  const json = call.accept === 'json';
  const b64Png = PNG_SIGNATURE.toString('base64');
  const [ctype, head, tail, byte] = !json
    ? ['image/png', PNG_SIGNATURE, Buffer.alloc(0), 0]
    : call.family === 'v2'
      ? ['application/json; type=image/png', `{"image":"${b64Png}`, `","finish_reason":"SUCCESS","seed":1}`, 0x41]
      : ['application/json', `{"artifacts":[{"base64":"${b64Png}`, `","seed":1,"finishReason":"SUCCESS"}]}`, 0x41];
  const [h, t] = [Buffer.from(head), Buffer.from(tail)];
  res.writeHead(200, { 'content-type': ctype, ...(opts.chunked ? {} : { 'content-length': opts.total }) });
  res.write(h);
  const chunk = fill(byte);
  let left = opts.total - h.length - t.length;
  while (left > 0 && !res.destroyed) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!res.write(piece)) await writable(res);
  }
  if (!res.destroyed) res.end(t);
}

/** `nightshift mock-api --fault NAME`: applied to every generation request. */
export const FAULT_NAMES: Record<string, Fault> = {
  'echo-name': { kind: 'echo-key', in: 'name' },
  'echo-id': { kind: 'echo-key', in: 'id' },
  'echo-message': { kind: 'echo-key', in: 'message' },
  'echo-long-message': { kind: 'echo-key', in: 'long-message' },
  'echo-text': { kind: 'echo-key', in: 'text' },
  huge: { kind: 'huge' },
  'huge-chunked': { kind: 'huge', chunked: true },
  'png-garbage': { kind: 'png-garbage' },
  'seed-1e21': { kind: 'bad-seed', value: '1e21' },
  'retry-after-huge': { status: 429, retryAfterSec: 999999999 },
};
