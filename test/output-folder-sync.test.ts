/**
 * Folders are kept open for their fsync across writes: a folder that is removed or replaced while a
 * worker runs must not swallow the writes that follow, and a sidecar the folder cannot read must
 * never read as "not paid".
 */
import { mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { DIR_HANDLE_MS, writeFileAtomic, writeFilesAtomic } from '../src/output/atomic.js';
import { findExistingImage } from '../src/output/image-writer.js';
import { useTempDir } from './helpers/temp-hooks.js';
import { until } from './helpers/wait.js';

/** What this process' descriptors point to (Linux). */
async function openFolders(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  return Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
}

describe('writes into a folder kept open for its fsync', () => {
  const root = useTempDir('ns-dirsync-');

  it('keeps every file of many writes finishing together', async () => {
    const dir = path.join(root(), 'images');
    await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        writeFilesAtomic([
          { target: path.join(dir, `${i}.png`), data: Buffer.from(`image ${i}`) },
          { target: path.join(dir, `${i}.json`), data: `{"i":${i}}` },
        ]),
      ),
    );
    const names = (await readdir(dir)).sort();
    expect(names).toHaveLength(128);
    expect(await readFile(path.join(dir, '63.png'), 'utf8')).toBe('image 63');
  });

  it('writes into a folder made again after it was removed', async () => {
    const dir = path.join(root(), 'images');
    await writeFileAtomic(path.join(dir, 'a.png'), 'first');
    await rm(dir, { recursive: true });
    // The first write after the removal may be refused (the folder is checked again), never lost silently.
    await writeFileAtomic(path.join(dir, 'b.png'), 'second').catch(() => {});
    await writeFileAtomic(path.join(dir, 'c.png'), 'third');
    expect(await readFile(path.join(dir, 'c.png'), 'utf8')).toBe('third');
    // Removed and made again by someone else: the next write lands in the new folder, and once the
    // old handle has had its second, the new folder is the one synced (the old one is let go).
    await rm(dir, { recursive: true });
    await mkdir(dir);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + DIR_HANDLE_MS + 1);
      await writeFileAtomic(path.join(dir, 'd.png'), 'fourth');
    } finally {
      vi.useRealTimers();
    }
    expect(await readdir(dir)).toEqual(['d.png']);
    await until('the old handle is closed', async () => !(await openFolders()).includes(`${dir} (deleted)`));
    expect(await openFolders()).toContain(dir);
  });

  it('finds no image for a job whose sidecar is not there, with or without its folder', async () => {
    const job = { id: 'b--0123456789abcdef01234567', file: 'images/00001-x-01234567.png' };
    expect(await findExistingImage(root(), job)).toBeNull();
    await mkdir(path.join(root(), 'images'));
    expect(await findExistingImage(root(), job)).toBeNull();
    // A link planted under its name is there but not trusted: the job runs.
    await symlink('/etc/hostname', path.join(root(), 'images/00001-x-01234567.json'));
    expect(await findExistingImage(root(), job)).toBeNull();
  });

  it('takes a file where the images folder should be as "nothing there": no sidecar can be under it', async () => {
    const job = { id: 'b--0123456789abcdef01234567', file: 'images/00001-x-01234567.png' };
    await writeFile(path.join(root(), 'images'), 'not a folder');
    expect(await findExistingImage(root(), job)).toBeNull();
  });

  it('cannot tell, and says so, when the sidecar cannot be opened (no descriptor left): never "not paid"', async () => {
    const job = { id: 'b--0123456789abcdef01234567', file: 'images/00001-x-01234567.png' };
    await mkdir(path.join(root(), 'images'));
    await writeFile(path.join(root(), 'images/00001-x-01234567.json'), '{}');
    const probe = spawnSync(
      'prlimit',
      [
        '--nofile=256:256',
        process.execPath,
        '--import',
        'tsx',
        'test/helpers/emfile-probe.ts',
        root(),
        job.id,
        job.file,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(probe.stdout.trim(), probe.stderr).toBe('storage EMFILE');
  });
});
