import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { UsageError } from '../src/errors.js';
import { batchFolderName } from '../src/output/paths.js';

/** `--out s3://BUCKET/PREFIX` and the SDK's standard environment, as the config reads them. */
describe('--out s3://BUCKET/PREFIX', () => {
  const s3Of = (out: string, env: Record<string, string> = {}) => loadConfig({ out }, env).s3;

  it('splits the bucket from the prefix, which ends with one slash or is empty', () => {
    expect(s3Of('s3://night-images/renders//2026/')).toMatchObject({ bucket: 'night-images', prefix: 'renders/2026/' });
    expect(s3Of('s3://night-images')).toMatchObject({ bucket: 'night-images', prefix: '' });
    expect(loadConfig({ out: './out' }, {}).s3).toBeNull();
  });

  it('takes the endpoint and region from the SDK variables; path-style only for an IP or localhost', () => {
    expect(s3Of('s3://b-1/p', { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4569', AWS_REGION: 'eu-west-1' })).toEqual({
      bucket: 'b-1',
      prefix: 'p/',
      endpoint: 'http://127.0.0.1:4569',
      region: 'eu-west-1',
      forcePathStyle: true,
    });
    expect(s3Of('s3://b-1/p', { AWS_ENDPOINT_URL: 'http://localhost:9000' })?.forcePathStyle).toBe(true);
    expect(s3Of('s3://b-1/p', { AWS_ENDPOINT_URL: 'http://[::1]:9000' })?.forcePathStyle).toBe(true);
    // The S3-specific variable wins over the general one.
    expect(
      s3Of('s3://b-1/p', { AWS_ENDPOINT_URL_S3: 'https://s3.example.com', AWS_ENDPOINT_URL: 'http://127.0.0.1:1' }),
    ).toMatchObject({ endpoint: 'https://s3.example.com', forcePathStyle: false });
    expect(s3Of('s3://b-1/p')).toMatchObject({ endpoint: null, region: 'us-east-1', forcePathStyle: false });
  });

  it('refuses what is not a bucket, or a prefix that climbs', () => {
    expect(() => s3Of('s3:///p')).toThrow(UsageError);
    expect(() => s3Of('s3://Bad_Bucket/p')).toThrow(/not an S3 bucket name/);
    expect(() => s3Of('s3://bucket/a/../b')).toThrow(UsageError);
    expect(() => s3Of('s3://bucket/p', { AWS_ENDPOINT_URL_S3: 'not a url' })).toThrow(UsageError);
  });

  it('names a batch below the prefix as its folder would be named, mock batches apart', () => {
    expect(batchFolderName({ api: 'https://api.stability.ai', batch: 'night' })).toBe('night');
    expect(batchFolderName({ api: 'mock', batch: 'night' })).toBe('mock/night');
    expect(() => batchFolderName({ api: 'mock', batch: '../x' })).toThrow();
  });
});
