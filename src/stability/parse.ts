/** Reading 200 answers into a GenerateResult; anything unusable is a transient malformed_response. */
import { ApiError } from '../errors.js';
import { header, malformedResponse } from './classify.js';
import type { FinishReason, GenerateResult, HeaderMap, ImageMime } from './types.js';

/** The image type from its magic bytes; the bytes, not the headers, decide what we save. */
export function sniffMime(buf: Uint8Array): ImageMime | undefined {
  if (buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) return 'image/png';
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'image/jpeg';
  if (
    buf.length >= 12 &&
    Buffer.from(buf.subarray(0, 4)).toString('latin1') === 'RIFF' &&
    Buffer.from(buf.subarray(8, 12)).toString('latin1') === 'WEBP'
  ) {
    return 'image/webp';
  }
  return undefined;
}

/** Strict base64: Buffer.from silently skips bad characters, which would hide a corrupt body. */
export function decodeBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value.replace(/\s+/g, '');
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

function checkedImage(bytes: Buffer | undefined, what: string): { bytes: Buffer; mime: ImageMime } {
  if (!bytes || bytes.length === 0) throw malformedResponse(`${what} is missing or empty`);
  const mime = sniffMime(bytes);
  if (!mime) throw malformedResponse(`${what} is not a PNG, JPEG or WebP image (${bytes.length} bytes)`);
  return { bytes, mime };
}

function toSeed(value: unknown, fallback: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : fallback;
}

function finishReason(value: unknown, ctx: string): FinishReason {
  // A missing reason (e.g. stripped by a proxy) is a success; v1's ERROR is a failed, unbilled generation.
  if (value === undefined || value === 'SUCCESS') return 'SUCCESS';
  if (value === 'CONTENT_FILTERED') return 'CONTENT_FILTERED';
  if (value === 'ERROR') {
    throw new ApiError({
      errorClass: 'transient',
      status: 200,
      apiName: 'finish_reason_error',
      message: `Stability API HTTP 200: generation finished with ERROR (${ctx})`,
    });
  }
  throw malformedResponse(`unknown finish reason ${JSON.stringify(value).slice(0, 40)} (${ctx})`);
}

function withRequestId(r: GenerateResult, id: string | undefined): GenerateResult {
  if (id) r.requestId = id;
  return r;
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw malformedResponse(`body is not a JSON object: ${body.subarray(0, 80).toString('utf8')}`);
}

/** v2beta 200, either Accept mode: decided by the content type actually returned. */
export function parseV2Success(headers: HeaderMap, body: Buffer, requestedSeed: number): GenerateResult {
  const requestId = header(headers, 'x-request-id');
  const ctype = (header(headers, 'content-type') ?? '').toLowerCase();
  if (ctype.startsWith('application/json')) {
    const json = parseJson(body);
    const reason = finishReason(json.finish_reason, 'finish_reason');
    const img = checkedImage(decodeBase64(json.image), 'image');
    return withRequestId({ ...img, seed: toSeed(json.seed, requestedSeed), finishReason: reason }, requestId);
  }
  const img = checkedImage(body, 'image body');
  const reason = finishReason(header(headers, 'finish-reason'), 'finish-reason header');
  return withRequestId(
    { ...img, seed: toSeed(header(headers, 'seed'), requestedSeed), finishReason: reason },
    requestId,
  );
}

/** v1 200: `{artifacts:[{base64, seed, finishReason}]}`; one sample requested, artifacts[0] used. */
export function parseV1Success(headers: HeaderMap, body: Buffer, requestedSeed: number): GenerateResult {
  const json = parseJson(body);
  const first: unknown = Array.isArray(json.artifacts) ? json.artifacts[0] : undefined;
  if (typeof first !== 'object' || first === null) throw malformedResponse('no artifacts in the response');
  const a = first as Record<string, unknown>;
  const reason = finishReason(a.finishReason, 'artifacts[0].finishReason');
  const img = checkedImage(decodeBase64(a.base64), 'artifacts[0].base64');
  return withRequestId(
    { ...img, seed: toSeed(a.seed, requestedSeed), finishReason: reason },
    header(headers, 'x-request-id'),
  );
}
