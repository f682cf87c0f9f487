/**
 * Run in a child with a low open-file limit: uses up its descriptors, then asks whether a job's image
 * is on disk. Prints what it got: `storage <code>`, `null`, `record` or `error <message>`.
 * Usage: node --import tsx test/helpers/emfile-probe.ts <batchDir> <jobId> <file>
 */
import { openSync } from 'node:fs';
import { StorageError } from '../../src/errors.js';
import { findExistingImage } from '../../src/output/image-writer.js';

const [batchDir, id, file] = process.argv.slice(2) as [string, string, string];
const held: number[] = [];
try {
  for (;;) held.push(openSync('/dev/null', 'r'));
} catch {
  // EMFILE: every descriptor is in use.
}
try {
  const found = await findExistingImage(batchDir, { id, file });
  process.stdout.write(found === null ? 'null\n' : 'record\n');
} catch (err) {
  process.stdout.write(err instanceof StorageError ? `storage ${err.fsCode}\n` : `error ${(err as Error).message}\n`);
}
process.exit(0);
