/**
 * The S3 store on its own, against s3rver on loopback: whole objects in order, head/get/list by
 * the batch's keys, and a store that cannot answer never reads as "nothing paid here".
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../src/errors.js';
import { findExistingImage } from '../src/output/image-writer.js';
import { batchStore } from '../src/output/storage/open.js';
import { s3Output } from '../src/output/storage/s3-store.js';
import { tempDir } from './helpers/temp.js';
import { listAll, loadS3rver, S3RVER_CREDENTIALS, startS3, type TestS3 } from './helpers/s3.js';

const loaded = await loadS3rver();
if ('missing' in loaded) console.warn(`[s3] skipped: s3rver cannot be loaded (${loaded.missing}); run npm ci`);

describe.skipIf('missing' in loaded)('the S3 store', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let s3: TestS3;
  const ref = { api: 'mock', batch: 'dawn' };
  const target = (endpoint: string) => ({
    bucket: 'store',
    prefix: 'p/',
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
  });

  beforeAll(async () => {
    for (const [k, v] of Object.entries(S3RVER_CREDENTIALS)) vi.stubEnv(k, v);
    tmp = await tempDir();
    await mkdir(join(tmp.dir, 's3'));
    s3 = await startS3((loaded as { S3rver: Parameters<typeof startS3>[0] }).S3rver, {
      dir: join(tmp.dir, 's3'),
      buckets: ['store'],
    });
  });
  afterAll(async () => {
    await s3?.close();
    await tmp?.cleanup();
    vi.unstubAllEnvs();
  });

  it('puts whole objects under the batch prefix and finds them by key', async () => {
    const root = s3Output(target(s3.url));
    await root.checkWritable();
    const store = batchStore(root, ref);
    expect(store.where).toBe('s3://store/p/mock/dawn/');
    const image = [Buffer.from('PNG-part-one-'), Buffer.from('part-two')];
    await store.put([
      { key: 'images/00001-a-0123abcd.png', data: image },
      { key: 'images/00001-a-0123abcd.json', data: '{"x":1}\n' },
    ]);
    expect(await store.head('images/00001-a-0123abcd.png')).toMatchObject({ size: 21 });
    expect(await store.head('images/none.png')).toBeNull();
    expect((await store.get('images/00001-a-0123abcd.png', 1000))?.toString()).toBe('PNG-part-one-part-two');
    expect(await store.get('images/none.json', 1000)).toBeNull();
    await expect(store.get('images/00001-a-0123abcd.png', 10)).rejects.toThrow(/too large/);
    const listed = await store.list('images/');
    expect(listed.map((o) => [o.key, o.size]).sort()).toEqual([
      ['images/00001-a-0123abcd.json', 8],
      ['images/00001-a-0123abcd.png', 21],
    ]);
    // Exactly the bytes given (no trailing checksum stored with them), and the write check left nothing.
    expect([...(await listAll(s3.client, 'store', 'p/')).entries()].sort()).toEqual([
      ['p/mock/dawn/images/00001-a-0123abcd.json', 8],
      ['p/mock/dawn/images/00001-a-0123abcd.png', 21],
    ]);
  });

  it('a store that cannot be reached is an error, never "not paid": the worker decides nothing', async () => {
    const job = { id: 'j1', file: 'images/00001-a-0123abcd.png' };
    const away = batchStore(s3Output(target('http://127.0.0.1:9')), ref);
    await expect(away.head('images/x.png')).rejects.toBeInstanceOf(StorageError);
    await expect(findExistingImage(away, job)).rejects.toBeInstanceOf(StorageError);
    // A bucket that is gone answers 404 too, but that says nothing about the job's image.
    const gone = batchStore(s3Output({ ...target(s3.url), bucket: 'no-such-bucket' }), ref);
    await expect(findExistingImage(gone, job)).rejects.toBeInstanceOf(StorageError);
    await expect(gone.list('images/')).rejects.toBeInstanceOf(StorageError);
  });
});
