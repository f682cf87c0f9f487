import path from 'node:path';
import type { S3Target } from '../../config/s3.js';
import type { BatchRef } from '../../redis/keys.js';
import { batchFolderName } from '../paths.js';
import { checkWritable } from '../writable.js';
import { folderStore } from './folder-store.js';
import { s3Output } from './s3-store.js';
import type { BatchStore, OutputRoot } from './types.js';

/** `--out`: a folder (`out`), or the S3 prefix of `--out s3://BUCKET/PREFIX`. */
export function openOutput(config: { out: string; s3: S3Target | null }): OutputRoot {
  if (config.s3) return s3Output(config.s3);
  const { out } = config;
  return {
    kind: 'folder',
    where: out,
    batch: (dir) => folderStore(path.join(out, dir), { root: out }),
    checkWritable: () => checkWritable(out),
  };
}

/** The store of one batch: `<out>/<batch>/` or `<out>/mock/<batch>/`, the name checked as for a folder. */
export function batchStore(root: OutputRoot, ref: BatchRef): BatchStore {
  return root.batch(batchFolderName(ref));
}
