/**
 * Reading 200 answers into a GenerateResult. The image must be of the type the answer claims and
 * well formed (see image-check.ts); anything unusable is a transient malformed_response. A bad seed
 * is only a warning: the image is good and paid for.
 */
import { ApiError } from '../errors.js';
import type { OutputFormat } from '../models.js';
import type { Redact } from '../secrets.js';
import { excerpt, header, malformedResponse } from './classify.js';
import { checkImage } from './image-check.js';
import { ApiFinishReason, type FinishReason, type GenerateResult, type HeaderMap, type ImageMime } from './types.js';

export interface ParseContext {
  /** The seed asked for: recorded when the answer's seed is missing or unusable. */
  seed: number;
  /** The format asked for: the claim when the answer does not say which image type it sends. */
  format: OutputFormat;
  /** The largest seed the model takes: a larger one in the answer cannot be the image's seed. */
  seedMax: number;
  redact: Redact;
}

const MIMES: Record<string, ImageMime> = {
  'image/png': 'image/png',
  'image/jpeg': 'image/jpeg',
  'image/jpg': 'image/jpeg',
  'image/webp': 'image/webp',
};
const FORMAT_MIME: Record<OutputFormat, ImageMime> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Strict base64: Buffer.from silently skips bad characters, which would hide a corrupt body. */
export function decodeBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value.replace(/\s+/g, '');
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

/**
 * The image type a v2beta answer claims: `image/png`, or JSON's `application/json; type=image/png`.
 * With no type named (no content-type, octet-stream, plain JSON) the format asked for is the claim.
 */
export function claimedMime(contentType: string | undefined, ctx: ParseContext): ImageMime {
  const [media = '', ...params] = (contentType ?? '').toLowerCase().split(';');
  const m = media.trim();
  if (m === 'application/json') {
    const type = params.map((p) => p.trim()).find((p) => p.startsWith('type='));
    if (type === undefined) return FORMAT_MIME[ctx.format];
    const named = MIMES[type.slice(5).replace(/"/g, '').trim()];
    if (!named) throw malformedResponse(`content-type ${contentType} names no known image type`, ctx.redact);
    return named;
  }
  if (m === '' || m === 'application/octet-stream') return FORMAT_MIME[ctx.format];
  const named = MIMES[m];
  if (!named) throw malformedResponse(`content-type ${contentType} is not an image type`, ctx.redact);
  return named;
}

function checkedImage(bytes: Buffer | undefined, mime: ImageMime, what: string, ctx: ParseContext) {
  if (!bytes || bytes.length === 0) throw malformedResponse(`${what} is missing or empty`, ctx.redact);
  const check = checkImage(bytes, mime);
  if (!check.ok)
    throw malformedResponse(`${what} is not a valid ${mime} (${bytes.length} bytes): ${check.reason}`, ctx.redact);
  return { bytes, mime };
}

/** The seed an answer reports, if it is one the API could have used; else the requested seed and a warning. */
function checkedSeed(value: unknown, where: string, ctx: ParseContext, warnings: string[]): number {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*\d{1,10}\s*$/.test(value)) n = Number(value);
  if (n !== undefined && Number.isInteger(n) && n >= 0 && n <= ctx.seedMax) return n;
  const shown = value === undefined ? 'missing' : excerpt(JSON.stringify(value) ?? String(value), 40, ctx.redact);
  warnings.push(`${where} ${shown} is not a seed (0…${ctx.seedMax}); recorded the requested seed ${ctx.seed}`);
  return ctx.seed;
}

function finishReason(value: unknown, where: string, ctx: ParseContext): FinishReason {
  // A missing reason (e.g. stripped by a proxy) is a success; v1's ERROR is a failed, unbilled generation.
  if (value === undefined) return 'SUCCESS';
  const known = ApiFinishReason.safeParse(value);
  if (known.success && known.data !== 'ERROR') return known.data;
  if (known.success) {
    throw new ApiError({
      errorClass: 'transient',
      status: 200,
      apiName: 'finish_reason_error',
      message: `Stability API HTTP 200: generation finished with ERROR (${where})`,
    });
  }
  throw malformedResponse(`unknown finish reason ${JSON.stringify(value)} (${where})`, ctx.redact);
}

/** The result, with the API's request id bounded and redacted: it is the server's text, like any other. */
function result(
  parts: Omit<GenerateResult, 'requestId'>,
  requestId: string | undefined,
  ctx: ParseContext,
): GenerateResult {
  return requestId ? { ...parts, requestId: excerpt(requestId, 128, ctx.redact) } : parts;
}

function parseJson(body: Buffer, ctx: ParseContext): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw malformedResponse(`body is not a JSON object: ${body.subarray(0, 4096).toString('utf8')}`, ctx.redact);
}

/** v2beta 200, either Accept mode: decided by the content type actually returned. */
export function parseV2Success(headers: HeaderMap, body: Buffer, ctx: ParseContext): GenerateResult {
  const requestId = header(headers, 'x-request-id');
  const ctype = header(headers, 'content-type');
  const mime = claimedMime(ctype, ctx);
  const warnings: string[] = [];
  if ((ctype ?? '').toLowerCase().startsWith('application/json')) {
    const json = parseJson(body, ctx);
    const reason = finishReason(json.finish_reason, 'finish_reason', ctx);
    const img = checkedImage(decodeBase64(json.image), mime, 'image', ctx);
    const seed = checkedSeed(json.seed, 'seed', ctx, warnings);
    return result({ ...img, seed, finishReason: reason, warnings }, requestId, ctx);
  }
  const img = checkedImage(body, mime, 'image body', ctx);
  const reason = finishReason(header(headers, 'finish-reason'), 'finish-reason header', ctx);
  const seed = checkedSeed(header(headers, 'seed'), 'seed header', ctx, warnings);
  return result({ ...img, seed, finishReason: reason, warnings }, requestId, ctx);
}

/** v1 200: `{artifacts:[{base64, seed, finishReason}]}`, always PNG; one sample requested, artifacts[0] used. */
export function parseV1Success(headers: HeaderMap, body: Buffer, ctx: ParseContext): GenerateResult {
  const json = parseJson(body, ctx);
  const first: unknown = Array.isArray(json.artifacts) ? json.artifacts[0] : undefined;
  if (typeof first !== 'object' || first === null) throw malformedResponse('no artifacts in the response', ctx.redact);
  const a = first as Record<string, unknown>;
  const reason = finishReason(a.finishReason, 'artifacts[0].finishReason', ctx);
  const img = checkedImage(decodeBase64(a.base64), 'image/png', 'artifacts[0].base64', ctx);
  const warnings: string[] = [];
  const seed = checkedSeed(a.seed, 'artifacts[0].seed', ctx, warnings);
  return result({ ...img, seed, finishReason: reason, warnings }, header(headers, 'x-request-id'), ctx);
}
