/** The one rule a folder and a bucket apply to the sidecars found under a job's 8 digits. */
import { describe, expect, it } from 'vitest';
import { verdictFrom, type SidecarRead } from '../src/output/batch-scan.js';
import type { ManifestRecord } from '../src/output/record.js';

const job = { id: 'b--ab12cd34000000000000000', id8: 'ab12cd34', slug: 'a-cat' };
const record = (file: string) => ({ id: job.id, status: 'succeeded', file, bytes: 10 }) as unknown as ManifestRecord;
const name = (n: number, slug = 'a-cat') => `0000${n}-${slug}-ab12cd34.json`;

describe('verdictFrom', () => {
  it('is finished at the first of its own sidecars whose image is intact, and reads no further', () => {
    const seen: string[] = [];
    function* reads(): Generator<SidecarRead> {
      for (const [n, file] of [
        [1, 'images/1.png'],
        [2, 'images/2.png'],
        [3, 'images/3.png'],
      ] as const) {
        seen.push(name(n));
        yield { name: name(n), read: record(file) };
      }
    }
    const v = verdictFrom(job, reads(), (r) => r.file === 'images/2.png');
    expect(v).toEqual({ kind: 'finished', record: record('images/2.png') });
    expect(seen).toEqual([name(1), name(2)]);
  });

  it('runs again under its own sidecar when no image is intact, before an unreadable one of its slug', () => {
    const v = verdictFrom(
      job,
      [
        { name: name(1), read: 'unreadable' },
        { name: name(2), read: record('images/2.png') },
      ],
      () => false,
    );
    expect(v).toEqual({ kind: 'rerun', sidecar: `images/${name(2)}` });
  });

  it("trusts an unreadable sidecar only under its own slug, and never another job's", () => {
    expect(verdictFrom(job, [{ name: name(1, 'a-dog'), read: 'unreadable' }], () => true)).toBeNull();
    expect(verdictFrom(job, [{ name: name(1), read: 'another' }], () => true)).toBeNull();
    expect(verdictFrom(job, [{ name: name(1), read: 'unreadable' }], () => true)).toEqual({
      kind: 'rerun',
      sidecar: `images/${name(1)}`,
    });
  });
});
