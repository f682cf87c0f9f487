import { isIP } from 'node:net';
import { UsageError } from '../errors.js';
import { dropUserinfo } from '../secrets.js';
import { isLoopbackHost } from './urls.js';

/** Where `--out s3://BUCKET/PREFIX` writes, and how the S3 client reaches it. */
export interface S3Target {
  bucket: string;
  /** Ends with `/`, or is empty: every batch is a prefix below it. */
  prefix: string;
  /** From AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL; null: the SDK's own endpoint for the region. */
  endpoint: string | null;
  region: string;
  /** `http://host/bucket/key` rather than `http://bucket.host/key`: an IP or localhost has no bucket subdomains. */
  forcePathStyle: boolean;
}

export const S3_SCHEME = 's3://';

/** Bucket names as S3 allows them (3–63 of lower-case letters, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function isS3Url(out: string): boolean {
  return out.startsWith(S3_SCHEME);
}

/** `s3://BUCKET/PREFIX` with the SDK's standard environment; a UsageError names what is wrong. */
export function parseS3Target(out: string, env: { endpoint: string | undefined; region: string }): S3Target {
  const rest = out.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (!BUCKET.test(bucket)) throw new UsageError(`--out: "${bucket}" is not an S3 bucket name (s3://BUCKET/PREFIX)`);
  const parts = (slash < 0 ? '' : rest.slice(slash + 1)).split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..' || p.includes('\\'))) {
    throw new UsageError(`--out: the prefix of ${out} may not contain ".", ".." or backslashes`);
  }
  const endpoint = env.endpoint?.trim() || null;
  return {
    bucket,
    prefix: parts.length === 0 ? '' : `${parts.join('/')}/`,
    endpoint,
    region: env.region,
    forcePathStyle: endpoint !== null && pathStyleHost(endpoint),
  };
}

function pathStyleHost(endpoint: string): boolean {
  let host: string;
  try {
    host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  } catch {
    throw new UsageError(`AWS_ENDPOINT_URL: "${dropUserinfo(endpoint).slice(0, 80)}" is not a URL`);
  }
  return isIP(host) !== 0 || isLoopbackHost(host);
}
