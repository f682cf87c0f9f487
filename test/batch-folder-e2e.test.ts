/**
 * The output folder is not a path to elsewhere, through the real `run` and `report`: a link planted
 * in a batch folder is refused (exit 3, naming it) or replaced, never written or read through, and
 * the links' targets stay untouched. Also: `report --batch` checks its name and its folder, and an
 * image that cannot be thumbnailed is a "no preview" tile that run and report count.
 */
import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { mkfifo } from './helpers/hostile-files.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

describe('planted links in a batch folder', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let env: NodeJS.ProcessEnv;
  let out: string;
  let batch: string;
  let elsewhere: string;
  let file: string;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [1, 5] });
    // A real (not --mock) batch against the fake API: its folder is <out>/<batch>.
    env = cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-folder-test',
    });
    out = join(tmp.dir, 'out');
    batch = join(out, 'p');
    elsewhere = join(tmp.dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(join(elsewhere, 'precious.txt'), 'precious\n');
    file = join(tmp.dir, 'p.txt');
    await writeFile(file, 'A lighthouse on a cliff\nA red fox in snow\n');
  });
  afterEach(async () => {
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const run = () => runCli(['run', file, '--queue', 'q', '--out', out], env);
  const report = (...args: string[]) => runCli(['report', '--queue', 'q', '--out', out, ...args], env);

  async function elsewhereUntouched(extra: string[] = []): Promise<void> {
    expect((await readdir(elsewhere)).sort()).toEqual([...extra, 'precious.txt'].sort());
    expect(await readFile(join(elsewhere, 'precious.txt'), 'utf8')).toBe('precious\n');
  }

  for (const [name, plant] of [
    ['images', () => symlink(elsewhere, join(batch, 'images'))],
    ['thumbs', () => symlink(elsewhere, join(batch, 'thumbs'))],
    ['manifest.jsonl', () => symlink(join(elsewhere, 'precious.txt'), join(batch, 'manifest.jsonl'))],
    ['run.log', () => symlink(join(elsewhere, 'precious.txt'), join(batch, 'run.log'))],
  ] as const) {
    it(`run refuses a planted ${name} link with exit 3, before calling the API`, async () => {
      await mkdir(batch, { recursive: true });
      await plant();
      const r = await run();
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stderr).toContain(join(batch, name));
      expect(r.stderr).toMatch(/symbolic link/);
      expect(mock.stats.generations.size).toBe(0);
      // Refused before anything was queued: no job waits for a worker to pay for it.
      expect(await redis.keys(`*${prefix}*`)).toEqual([]);
      await elsewhereUntouched();
    });
  }

  it('run refuses a batch folder that is itself a link', async () => {
    await mkdir(out, { recursive: true });
    await symlink(elsewhere, batch);
    const r = await run();
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toContain(batch);
    expect(await redis.keys(`*${prefix}*`)).toEqual([]);
    await elsewhereUntouched();
  });

  it('a --log-file that is a folder or a FIFO: exit 3 naming it, before anything is queued', async () => {
    const folder = join(tmp.dir, 'logs');
    await mkdir(folder);
    const fifo = join(tmp.dir, 'log.fifo');
    mkfifo(fifo);
    for (const [log, why] of [
      [folder, /is a folder/],
      [fifo, /is a FIFO or socket/],
    ] as const) {
      for (const args of [
        ['run', file, '--queue', 'q', '--out', out, '--log-file', log],
        ['work', '--exit-when-idle', '--queue', 'q', '--out', out, '--log-file', log],
      ]) {
        const r = await runCli(args, env);
        expect(r.code, r.stdout + r.stderr).toBe(3);
        expect(r.stderr).toContain(`cannot open the log file ${log} (--log-file)`);
        expect(r.stderr).toMatch(why);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    }
    expect(await redis.keys(`*${prefix}*`)).toEqual([]);
  });

  it('replaces planted image and sidecar links instead of writing through them; report never reads through one', async () => {
    const first = await run();
    expect(first.code, first.stderr).toBe(0);
    const names = (await readdir(join(batch, 'images'))).sort();
    // The first job's image and the second job's sidecar become links to files elsewhere.
    const image = names.filter((n) => n.endsWith('.png'))[0]!;
    const sidecar = names.filter((n) => n.endsWith('.json'))[1]!;
    const outsideJson = join(elsewhere, 'other.json');
    await writeFile(outsideJson, '{"SECRET-OUTSIDE": true}\n');
    await rm(join(batch, 'images', image));
    await symlink(join(elsewhere, 'precious.txt'), join(batch, 'images', image));
    await rm(join(batch, 'images', sidecar));
    await symlink(outsideJson, join(batch, 'images', sidecar));
    const rep = await report('--batch', 'p');
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout).toContain(`warning: images/${image}: not read, it is a symbolic link`);
    expect(rep.stdout).toContain(`warning: skipped sidecar images/${sidecar}:`);
    expect(await readFile(join(batch, 'manifest.jsonl'), 'utf8')).not.toContain('SECRET-OUTSIDE');

    // As after a wiped Redis (a fresh prefix): the same jobs, the same file names, run again; their
    // writes replace the links (rename), never follow them.
    const fresh = randomPrefix();
    const again = await runCli(['run', file, '--queue', 'q', '--out', out], { ...env, NIGHTSHIFT_PREFIX: fresh });
    await cleanupPrefix(redis, fresh);
    expect(again.code, again.stderr).toBe(0);
    for (const n of [image, sidecar]) expect((await lstat(join(batch, 'images', n))).isFile()).toBe(true);
    expect(await readFile(outsideJson, 'utf8')).toBe('{"SECRET-OUTSIDE": true}\n');
    await elsewhereUntouched(['other.json']);
  });

  it('report --batch refuses a name that is not a batch name (exit 2) and a batch with no folder (exit 2)', async () => {
    const bad = await report('--batch', '../x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--batch: "\.\.\/x" is not a valid batch name/);
    const missing = await report('--batch', 'nothing-here');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no batch folder .*nothing-here/);
    await expect(readdir(out)).rejects.toThrow(); // no empty gallery, no folder made
  });

  it('report refuses a batch whose images folder is a link (exit 3)', async () => {
    await mkdir(batch, { recursive: true });
    await symlink(elsewhere, join(batch, 'images'));
    const r = await report('--batch', 'p');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(join(batch, 'images'));
    await elsewhereUntouched();
  });

  it('an image sharp cannot read gets a "no preview" tile, never the full image, and report counts it', async () => {
    const first = await run();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).not.toMatch(/thumbnails: \d+ could not be made/);
    const image = (await readdir(join(batch, 'images'))).find((n) => n.endsWith('.png'))!;
    // Same size (so the record still matches), newer than its thumbnail, and no longer a PNG.
    const size = (await readFile(join(batch, 'images', image))).length;
    await writeFile(join(batch, 'images', image), Buffer.alloc(size, 0x42));
    const r = await report('--batch', 'p');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/thumbnails: 1 could not be made \(the gallery shows "no preview" for them\)/);
    const html = await readFile(join(batch, 'index.html'), 'utf8');
    expect(html).toContain(`<a class="nopreview" href="images/${image}">no preview</a>`);
    expect(html).not.toMatch(/<img [^>]*src="images\//);
  });
});
