/**
 * enqueue reads the prompt files twice: once to validate every line, once to add the jobs a chunk at
 * a time. A file edited in between stops the second reading, and the error says so, with what was
 * already added — never a plain line error that would read as "nothing was enqueued".
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PromptFileError } from '../src/errors.js';
import { enqueuePromptFiles } from '../src/queue/enqueue.js';
import { silent, usePipeline } from './helpers/pipeline.js';

describe('a prompt file changed between the two readings of enqueue', () => {
  const t = usePipeline();

  /** Enqueues `files` (name → lines) as one batch, calling `change` between the two readings. */
  async function enqueueChanging(files: Record<string, number>, change: (dir: string) => Promise<void>) {
    const paths: string[] = [];
    for (const [name, lines] of Object.entries(files)) {
      const file = join(t.tmp.dir, name);
      await writeFile(file, Array.from({ length: lines }, (_, i) => `a lighthouse in ${name}, take ${i}\n`).join(''));
      paths.push(file);
    }
    const err = await enqueuePromptFiles(
      { files: paths, defaults: {}, maxJobs: 100_000, dryRun: false, force: false, batch: 'b' },
      {
        logger: silent,
        api: t.p.config.api.identity,
        out: t.p.config.out,
        // Called between the readings: the moment a user's editor saves the file.
        connect: async () => {
          await change(t.tmp.dir);
          return t.p.ctx;
        },
      },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PromptFileError);
    return { err: err as PromptFileError, waiting: await t.p.ctx.queue.getWaitingCount() };
  }

  it('a bad line added to the second file: a change, naming the line, saying how many jobs were added', async () => {
    const { err, waiting } = await enqueueChanging({ 'a.txt': 1500, 'b.txt': 10 }, (dir) =>
      appendFile(join(dir, 'b.txt'), '{bad|\n'),
    );
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ line: 11, field: 'file' });
    expect(err.message).toMatch(/b\.txt:11: file: changed while it was being enqueued \(now prompt: .*\)/);
    // What it says was added is what the queue holds: the whole chunks read before the bad line.
    const said = /; (\d+) job\(s\) added before the change stay in the queue and will run/.exec(err.message);
    expect(said).not.toBeNull();
    expect(Number(said![1])).toBe(waiting);
    expect(waiting).toBeGreaterThanOrEqual(1000);
  });

  it('a file cut short: the jobs of the lines read are added, and it says how many', async () => {
    const { err, waiting } = await enqueueChanging({ 'short.txt': 1500 }, (dir) =>
      writeFile(
        join(dir, 'short.txt'),
        Array.from({ length: 1200 }, (_, i) => `a lighthouse in short.txt, take ${i}\n`).join(''),
      ),
    );
    expect(waiting).toBe(1200);
    expect(err.message).toMatch(/changed while it was being enqueued; 1200 job\(s\) added before the change stay/);
  });

  it('a line edited before anything was added: nothing added, and it says so', async () => {
    const { err, waiting } = await enqueueChanging({ 'night.txt': 3 }, (dir) =>
      writeFile(
        join(dir, 'night.txt'),
        'a lighthouse in night.txt, take 0\nsomething else\na lighthouse in night.txt, take 2\n',
      ),
    );
    expect(waiting).toBe(0);
    expect(err.message).toMatch(/night\.txt:2: file: changed while it was being enqueued; nothing was added/);
  });
});
