import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EnvironmentError } from '../errors.js';

/** Workers on many machines must share one output folder; refuse to start if ours is not writable. */
export async function checkWritable(dir: string): Promise<void> {
  const probe = join(dir, `.write-check-${process.pid}-${Date.now()}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, 'ok');
    await rm(probe, { force: true });
  } catch (err) {
    throw new EnvironmentError(`cannot write to the output folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
}
