import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Target } from '../../config/s3.js';
import { quietSdkNodeNotice } from '../../config.js';
import { EnvironmentError, StorageError } from '../../errors.js';
import { joinData, type BatchStore, type OutputRoot, type StoredObject } from './types.js';

/**
 * `--out s3://BUCKET/PREFIX`: each batch is a prefix, each file a whole object (a PUT is visible
 * whole or not at all, so no partial image is ever seen). Credentials come from the SDK's default
 * chain; the endpoint and region from the SDK's standard environment, read by the config.
 */
export function s3Output(target: S3Target): OutputRoot {
  const where = `s3://${target.bucket}/${target.prefix}`;
  let conn: Promise<S3> | null = null;
  // The SDK is loaded on first use: it costs a quarter of a second, and most commands never need it.
  const s3 = () => (conn ??= loadSdk().then((sdk) => ({ sdk, client: s3Client(sdk, target) })));
  return {
    kind: 'objects',
    where,
    batch: (dir) => s3Store(s3, { bucket: target.bucket, base: `${target.prefix}${dir}/` }),
    async checkWritable() {
      const key = `${target.prefix}.write-check-${process.pid}-${Date.now()}`;
      try {
        const { sdk, client } = await s3();
        await client.send(new sdk.PutObjectCommand({ Bucket: target.bucket, Key: key, Body: 'ok' }));
        await client.send(new sdk.DeleteObjectCommand({ Bucket: target.bucket, Key: key }));
      } catch (err) {
        throw new EnvironmentError(`cannot write to ${where}: ${messageOf(err)}`, { cause: err });
      }
    },
  };
}

type Sdk = typeof import('@aws-sdk/client-s3');

function loadSdk(): Promise<Sdk> {
  quietSdkNodeNotice();
  return import('@aws-sdk/client-s3');
}
interface S3 {
  sdk: Sdk;
  client: S3Client;
}
type Connect = () => Promise<S3>;

function s3Client(sdk: Sdk, target: S3Target): S3Client {
  return new sdk.S3Client({
    region: target.region,
    ...(target.endpoint !== null ? { endpoint: target.endpoint } : {}),
    forcePathStyle: target.forcePathStyle,
    // Bodies are whole buffers with a known length; checksums only where S3 demands them (some
    // S3-compatible stores keep the trailing checksum of a streamed upload as part of the object).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  jpg: 'image/jpeg',
  webp: 'image/webp',
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  html: 'text/html; charset=utf-8',
};

function contentTypeOf(key: string): string {
  return CONTENT_TYPES[/\.([a-z0-9]+)$/i.exec(key)?.[1]?.toLowerCase() ?? ''] ?? 'application/octet-stream';
}

function s3Store(s3: Connect, at: { bucket: string; base: string }): BatchStore {
  const { bucket, base } = at;
  const where = (key = '') => `s3://${bucket}/${base}${key}`;
  return {
    kind: 'objects',
    where: where(),
    async put(objects) {
      // One at a time, in order: a sidecar is written only once its image stands.
      for (const o of objects) {
        const body = joinData(o.data);
        const { sdk, client } = await s3();
        await call(where(o.key), 'write', () =>
          client.send(
            new sdk.PutObjectCommand({
              Bucket: bucket,
              Key: base + o.key,
              Body: body,
              ContentLength: body.length,
              ContentType: contentTypeOf(o.key),
            }),
          ),
        );
      }
    },
    async head(key) {
      const { sdk, client } = await s3();
      const r = await orNotFound(where(key), () =>
        client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: base + key })),
      );
      return r === null ? null : { key, size: r.ContentLength ?? 0, modifiedMs: r.LastModified?.getTime() ?? null };
    },
    get: async (key, maxBytes) => getObject(await s3(), { bucket, key: base + key, where: where(key), maxBytes }),
    list: async (prefix) => listObjects(await s3(), { bucket, base, prefix }),
  };
}

async function getObject(
  { sdk, client }: S3,
  o: { bucket: string; key: string; where: string; maxBytes: number },
): Promise<Buffer | null> {
  const r = await orNotFound(o.where, () => client.send(new sdk.GetObjectCommand({ Bucket: o.bucket, Key: o.key })));
  if (r === null) return null;
  if ((r.ContentLength ?? 0) > o.maxBytes) {
    r.Body?.transformToWebStream()
      .cancel()
      .catch(() => {});
    throw new Error(`${o.where}: object is too large (${r.ContentLength} bytes; the limit is ${o.maxBytes})`);
  }
  // A connection lost while reading is the store not answering, not an untrusted object.
  const body = await call(o.where, 'read', async () => (await r.Body?.transformToByteArray()) ?? new Uint8Array());
  const bytes = Buffer.from(body);
  if (bytes.length > o.maxBytes) throw new Error(`${o.where}: object is too large`);
  return bytes;
}

/** Every object under the batch's `prefix`, a page (up to 1,000 keys) per request. */
async function listObjects(
  { sdk, client }: S3,
  o: { bucket: string; base: string; prefix: string },
): Promise<StoredObject[]> {
  const found: StoredObject[] = [];
  let token: string | undefined;
  do {
    const page = await call(`s3://${o.bucket}/${o.base}${o.prefix}`, 'list', () =>
      client.send(
        new sdk.ListObjectsV2Command({ Bucket: o.bucket, Prefix: o.base + o.prefix, ContinuationToken: token }),
      ),
    );
    for (const c of page.Contents ?? []) {
      if (!c.Key?.startsWith(o.base)) continue;
      found.push({ key: c.Key.slice(o.base.length), size: c.Size ?? 0, modifiedMs: c.LastModified?.getTime() ?? null });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

/** A missing object; a missing bucket is also a 404, but says nothing about what was paid. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/** The answer, or null for a missing object; any other failure is a StorageError (never "not there"). */
async function orNotFound<T>(where: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw storageError(err, `cannot read ${where}`);
  }
}

async function call<T>(where: string, what: 'write' | 'list' | 'read', fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storageError(err, `cannot ${what} ${where}`);
  }
}

function messageOf(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  return `${e?.message || e?.name || String(err)}${status ? ` (HTTP ${status})` : ''}`;
}

/** S3 failures as storage errors: the code is the S3 error's name (SlowDown, InternalError, …). */
function storageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  return new StorageError(`${what}: ${messageOf(err)}`, (err as Error)?.name || 'S3Error', { cause: err });
}
