import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { estimateBatch, formatEstimate, parseWindow, windowSecondsLeft, windowState } from '../src/queue/window.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

const local = (h: number, m: number, s = 0, day = 15) => new Date(2026, 5, day, h, m, s);

describe('run windows: when jobs are taken', () => {
  it('reads HH:MM and HH:MM:SS, and refuses anything else naming the flag', () => {
    expect(parseWindow('22:00-07:00', '--window')).toMatchObject({ start: 22 * 3600, end: 7 * 3600 });
    expect(parseWindow('9:05:30-17:00', '--window')).toMatchObject({ start: 9 * 3600 + 5 * 60 + 30, end: 17 * 3600 });
    for (const bad of ['22-07', '24:00-07:00', '22:00', '22:00-07:00-08:00', '22:60-07:00', '10:00-10:00']) {
      expect(() => parseWindow(bad, '--window')).toThrow(UsageError);
      expect(() => parseWindow(bad, 'NIGHTSHIFT_WINDOW')).toThrow(/^NIGHTSHIFT_WINDOW: /);
    }
  });

  it('crosses midnight: open late in the evening and early in the morning, closed by day', () => {
    const w = parseWindow('22:00-07:00', '--window');
    expect(windowState(w, local(23, 30))).toEqual({ open: true, changesAt: local(7, 0, 0, 16) });
    expect(windowState(w, local(3, 0))).toEqual({ open: true, changesAt: local(7, 0) });
    expect(windowState(w, local(12, 0))).toEqual({ open: false, changesAt: local(22, 0) });
    expect(windowState(w, local(7, 0))).toEqual({ open: false, changesAt: local(22, 0) });
    expect(windowState(w, local(22, 0))).toMatchObject({ open: true });
    const day = parseWindow('09:00-17:00', '--window');
    expect(windowState(day, local(18, 0))).toEqual({ open: false, changesAt: local(9, 0, 0, 16) });
    expect(windowSecondsLeft(w, local(6, 0))).toBe(3600);
    expect(windowSecondsLeft(w, local(12, 0))).toBe(9 * 3600);
  });

  it('says whether a batch fits: the time at the rate limit against what the window leaves', () => {
    const w = parseWindow('22:00-07:00', '--window');
    const e = estimateBatch({ jobs: 172_800, rate: { count: 150, windowMs: 10_000 }, window: w, now: local(23, 0) });
    expect(e).toMatchObject({ per_second: 15, seconds: 11_520, window_seconds: 8 * 3600, fits: true });
    expect(formatEstimate(e, true)).toBe(
      '172800 jobs: about 3.2 h at 15 images/s; the window 22:00-07:00 leaves 8.0 h',
    );
    const late = estimateBatch({ jobs: 172_800, rate: { count: 150, windowMs: 10_000 }, window: w, now: local(5, 0) });
    expect(late.fits).toBe(false);
    expect(formatEstimate(late, true)).toMatch(/leaves 2\.0 h — more than the window/);
    const evening = estimateBatch({
      jobs: 1500,
      rate: { count: 150, windowMs: 10_000 },
      window: w,
      now: local(19, 30),
    });
    expect(formatEstimate(evening, false)).toBe(
      '1500 jobs: about 2 min at 15 images/s; the window 22:00-07:00 opens in 2.5 h and gives 9.0 h',
    );
  });
});

/** `HH:MM:SS` of a moment `ms` from now, local time (the child shares our time zone). */
function clockIn(ms: number): string {
  return new Date(Date.now() + ms).toTimeString().slice(0, 8);
}

describe('run windows, as real processes against the fake API', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  /** When each generation request arrived (the balance check at enqueue is not a job). */
  let generations: number[];
  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    generations = [];
    mock = await startMockApi({
      latencyMs: 300,
      fault: ({ path }) => {
        if (path.includes('/generate/')) generations.push(Date.now());
        return undefined;
      },
    });
  });
  afterEach(async () => {
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const env = () =>
    cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-window',
    });
  const promptFile = async (n: number) => {
    const file = join(tmp.dir, 'night.txt');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, Array.from({ length: n }, (_, i) => `a lighthouse on a cliff, study ${i}`).join('\n'));
    return file;
  };

  it('a window that opens in a few seconds: no request before it, the batch done after it', async () => {
    const file = await promptFile(6);
    const opensIn = 6000;
    const start = clockIn(opensIn);
    const opensAt = Date.now() + opensIn - 1000; // HH:MM:SS drops the milliseconds
    const r = await runCli(
      ['run', file, '--out', tmp.dir, '--queue', 'win1', '--window', `${start}-${clockIn(3_600_000)}`],
      env(),
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/6 jobs: about 1 s at 15 images\/s; the window .* opens in \d+ s and gives/);
    expect(generations.length).toBe(6);
    expect(Math.min(...generations)).toBeGreaterThanOrEqual(opensAt);
    const manifest = (await readFile(join(tmp.dir, 'night', 'manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(manifest.map((l) => (JSON.parse(l) as { status: string }).status)).toEqual(Array(6).fill('succeeded'));
  });

  it('a window that closes mid-batch: nothing starts after it, in-flight requests finish, the rest stays queued', async () => {
    const file = await promptFile(90);
    const endsIn = 6000;
    const end = clockIn(endsIn);
    const endsAt = new Date(new Date().toDateString() + ' ' + end).getTime();
    const r = await runCli(
      [
        'run',
        file,
        '--out',
        tmp.dir,
        '--queue',
        'win2',
        '--concurrency',
        '2',
        '--window',
        `${clockIn(-3_600_000)}-${end}`,
        '--exit-at-window-end',
      ],
      env(),
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const sent = generations.length;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(90);
    // A request that left before the end may arrive a moment after it; none may leave later.
    expect(Math.max(...generations)).toBeLessThan(endsAt + 250);
    expect(r.stdout).toMatch(
      new RegExp(`the run window .* closed: ${90 - sent} job\\(s\\) of batch night left queued`),
    );
    const lines = (await readFile(join(tmp.dir, 'night', 'manifest.jsonl'), 'utf8')).trim().split('\n');
    // Every request sent was recorded: in flight at the end means finished, not lost.
    expect(lines).toHaveLength(sent);
    const waiting = await redis.llen(`${prefix}:win2:wait`);
    expect(waiting).toBe(90 - sent);
  });
});
