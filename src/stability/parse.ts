/**
 * Reading 200 answers into a GenerateResult. The image must be of the type the answer claims and
 * well formed (see image-check.ts); anything unusable is a transient malformed_response. Once the
 * image is good, an odd header (a bad seed, an unknown finish reason) is only a warning: the image
 * is paid for.
 */
import { ApiError } from '../errors.js';
import type { OutputFormat } from '../models.js';
import type { Redact } from '../secrets.js';
import { excerpt, header, malformedResponse } from './classify.js';
import { checkImage } from './image-check.js';
import { ApiFinishReason, FinishReason, type GenerateResult, type HeaderMap, type ImageMime } from './types.js';

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

/** An `image/…` type nightshift does not know (`image/x-png`): the body says which image it is. */
const UNNAMED_IMAGE = 'image/*';
type Claim = ImageMime | typeof UNNAMED_IMAGE;

/**
 * The image type a v2beta answer claims: `image/png`, or JSON's `application/json; type=image/png`.
 * With no type named (no content-type, octet-stream, plain JSON) the format asked for is the claim.
 * A type that is no image (`text/html`) is a malformed answer; an image type of another spelling
 * is an image still, of the type its bytes show.
 */
export function claimedMime(contentType: string | undefined, ctx: ParseContext): Claim {
  const [media = '', ...params] = (contentType ?? '').toLowerCase().split(';');
  const m = media.trim();
  if (m === 'application/json') {
    const type = params.map((p) => p.trim()).find((p) => p.startsWith('type='));
    if (type === undefined) return FORMAT_MIME[ctx.format];
    return namedMime(type.slice(5).replace(/"/g, '').trim(), contentType, ctx);
  }
  if (m === '' || m === 'application/octet-stream') return FORMAT_MIME[ctx.format];
  return namedMime(m, contentType, ctx);
}

function namedMime(m: string, contentType: string | undefined, ctx: ParseContext): Claim {
  const named = MIMES[m];
  if (named) return named;
  if (m.startsWith('image/')) return UNNAMED_IMAGE;
  throw malformedResponse(`content-type ${contentType} is not an image type`, ctx.redact);
}

/**
 * The checked image under its claim; an unnamed image type is taken as what the bytes show, with a
 * warning: the answer is paid for, and a header spelled otherwise must not send the request again.
 */
function imageUnder(
  claim: Claim,
  bytes: Buffer | undefined,
  what: string,
  o: { ctx: ParseContext; warnings: string[]; contentType: string | undefined },
) {
  if (claim !== UNNAMED_IMAGE) return checkedImage(bytes, claim, what, o.ctx);
  // The body names its type by being a well-formed image of it (the same check as a named type).
  const shown = bytes && Object.values(FORMAT_MIME).find((m) => checkImage(bytes, m).ok);
  if (!shown) throw malformedResponse(`content-type ${o.contentType} names no image type the body shows`, o.ctx.redact);
  const img = { bytes: bytes!, mime: shown };
  o.warnings.push(
    `content-type ${excerpt(o.contentType ?? '', 80, o.ctx.redact)} is unknown; the body is a valid ${shown}`,
  );
  return img;
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

/**
 * How the generation ended. v1's ERROR comes with no image and is not billed: transient, the only
 * reason that throws. Any other value comes with the image, checked on its own: a spelling the API
 * does not document is read case-blind, and one still unknown is a success, or filtered when it
 * says so, with a warning — never a reason to send a paid request again.
 */
function finishReason(value: unknown, where: string, ctx: ParseContext, warnings: string[]): FinishReason {
  // A missing reason (e.g. stripped by a proxy) is a success.
  if (value === undefined) return 'SUCCESS';
  const spelled = typeof value === 'string' ? value.trim().toUpperCase() : value;
  const known = ApiFinishReason.safeParse(spelled);
  if (known.success && known.data === 'ERROR') {
    throw new ApiError({
      errorClass: 'transient',
      status: 200,
      apiName: 'finish_reason_error',
      message: `Stability API HTTP 200: generation finished with ERROR (${where})`,
    });
  }
  const paid = FinishReason.safeParse(spelled);
  if (paid.success && spelled === value) return paid.data;
  const reason: FinishReason = paid.success
    ? paid.data
    : typeof spelled === 'string' && spelled.includes('FILTER')
      ? 'CONTENT_FILTERED'
      : 'SUCCESS';
  const shown = excerpt(JSON.stringify(value) ?? String(value), 40, ctx.redact);
  warnings.push(`${where} ${shown} is not one the API documents; recorded as ${reason}`);
  return reason;
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
  const contentType = header(headers, 'content-type');
  const claim = claimedMime(contentType, ctx);
  const warnings: string[] = [];
  const o = { ctx, warnings, contentType };
  if ((contentType ?? '').toLowerCase().startsWith('application/json')) {
    const json = parseJson(body, ctx);
    const reason = finishReason(json.finish_reason, 'finish_reason', ctx, warnings);
    const img = imageUnder(claim, decodeBase64(json.image), 'image', o);
    const seed = checkedSeed(json.seed, 'seed', ctx, warnings);
    return result({ ...img, seed, finishReason: reason, warnings }, requestId, ctx);
  }
  const reason = finishReason(header(headers, 'finish-reason'), 'finish-reason header', ctx, warnings);
  const img = imageUnder(claim, body, 'image body', o);
  const seed = checkedSeed(header(headers, 'seed'), 'seed header', ctx, warnings);
  return result({ ...img, seed, finishReason: reason, warnings }, requestId, ctx);
}

/** v1 200: `{artifacts:[{base64, seed, finishReason}]}`, always PNG; one sample requested, artifacts[0] used. */
export function parseV1Success(headers: HeaderMap, body: Buffer, ctx: ParseContext): GenerateResult {
  const json = parseJson(body, ctx);
  const first: unknown = Array.isArray(json.artifacts) ? json.artifacts[0] : undefined;
  if (typeof first !== 'object' || first === null) throw malformedResponse('no artifacts in the response', ctx.redact);
  const a = first as Record<string, unknown>;
  const warnings: string[] = [];
  const reason = finishReason(a.finishReason, 'artifacts[0].finishReason', ctx, warnings);
  const img = checkedImage(decodeBase64(a.base64), 'image/png', 'artifacts[0].base64', ctx);
  const seed = checkedSeed(a.seed, 'artifacts[0].seed', ctx, warnings);
  return result({ ...img, seed, finishReason: reason, warnings }, header(headers, 'x-request-id'), ctx);
}
