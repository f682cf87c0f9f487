/**
 * A hostile API that echoes the key (in an error's name, id, a message long enough to be cut, a
 * non-JSON body, a 401 that pauses the queue): after a real `nightshift run` against it, neither the
 * key nor its first 12 characters may appear in the output folder, the logs or anything in Redis.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startMockApi } from '../src/mock-api/server.js';
import type { Fault } from '../src/mock-api/types.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { useProcessFixture } from './helpers/process-fixture.js';

const KEY = `sk-${randomBytes(30).toString('base64url').slice(0, 40)}`;
const NEEDLES = [KEY, KEY.slice(0, 12)];
const FAST = ['--backoff', '0.01', '--lockout', '0.2', '--breaker-threshold', '1000', '--rate', '1000/1'];

/** Every file under `dir`, as text (images too: a key could hide in any bytes). */
async function readTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.set(path, (await readFile(path)).toString('latin1'));
  }
  return out;
}

/** Every value of every key under `prefix`, whatever its type. */
async function dumpRedis(redis: Redis, prefix: string): Promise<string[]> {
  const values: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      values.push(key);
      if (type === 'string') values.push(((await redis.getBuffer(key)) ?? Buffer.alloc(0)).toString('latin1'));
      else if (type === 'hash') values.push(...Object.entries(await redis.hgetall(key)).flat());
      else if (type === 'list') values.push(...(await redis.lrange(key, 0, -1)));
      else if (type === 'set') values.push(...(await redis.smembers(key)));
      else if (type === 'zset') values.push(...(await redis.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'stream') values.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else values.push(`unknown type ${type}`);
    }
  } while (cursor !== '0');
  return values;
}

function hits(where: string, text: string): string[] {
  return NEEDLES.filter((n) => text.includes(n)).map(
    (n) => `${where} contains ${n === KEY ? 'the key' : 'its first 12 characters'}`,
  );
}

describe('a hostile API echoing the key, against real processes', () => {
  const fx = useProcessFixture();
  const { redis } = fx;

  async function runAgainst(faults: Record<string, (attempt: number) => Fault | undefined>, batch: string) {
    fx.mock = await startMockApi({
      apiKey: KEY,
      fault: ({ prompt, attempt }) => faults[prompt]?.(attempt),
    });
    const file = join(fx.tmp.dir, `${batch}.txt`);
    await writeFile(file, `${Object.keys(faults).join('\n')}\n`);
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: fx.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_HOST: fx.mock.url,
      STABILITY_API_KEY: KEY,
    });
    const out = join(fx.tmp.dir, 'out');
    const res = await runCli(['run', file, '--model', 'core', '--queue', 'q', '--out', out, ...FAST], env, 120_000);
    const found: string[] = [...hits('stdout', res.stdout), ...hits('stderr', res.stderr)];
    const files = await readTree(out);
    for (const [path, text] of files) found.push(...hits(path, text));
    const values = await dumpRedis(redis, fx.prefix);
    expect(values.length).toBeGreaterThan(0);
    for (const v of values) found.push(...hits(`redis value ${v.slice(0, 60)}`, v));
    return { res, found, files, values, batchDir: join(out, batch) };
  }

  it('echoes in name, id, a cut message, a non-JSON body and a 429 leave 0 traces', async () => {
    const { res, found, files, values, batchDir } = await runAgainst(
      {
        'echo in the name': () => ({ kind: 'echo-key', in: 'name' }),
        'echo in the id': () => ({ kind: 'echo-key', in: 'id', status: 500 }),
        'echo in a long message': () => ({ kind: 'echo-key', in: 'long-message', status: 422 }),
        'echo in a text body': () => ({ kind: 'echo-key', in: 'text' }),
        'echo in a 429 once': (attempt) =>
          attempt === 1 ? { kind: 'echo-key', in: 'message', status: 429 } : undefined,
        'a plain lighthouse': () => undefined,
      },
      'hostile',
    );
    expect(res.code, res.stderr).toBe(1);
    expect(found).toEqual([]);
    // The echoes did arrive and were stored, redacted: the check above had something to find.
    const manifest = files.get(join(batchDir, 'manifest.jsonl'))!;
    const lines = manifest
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; status: string; error: { name: string; message: string } | null });
    const byPrompt = new Map(lines.map((l) => [l.prompt, l]));
    expect(byPrompt.get('a plain lighthouse')?.status).toBe('succeeded');
    expect(byPrompt.get('echo in a 429 once')?.status).toBe('succeeded');
    expect(byPrompt.get('echo in the name')?.error?.name).toBe('[redacted]');
    expect(byPrompt.get('echo in the id')?.error?.message).toMatch(/id \[redacted\]/);
    expect(byPrompt.get('echo in a long message')?.error?.message).toMatch(/could not be processed.*\[redacted\]/);
    expect(byPrompt.get('echo in a text body')?.error?.message).toMatch(/Authorization: \[redacted\]/);
    expect(files.get(join(batchDir, 'index.html'))).toContain('[redacted]');
    expect(values.some((v) => v.includes('[redacted]'))).toBe(true); // BullMQ's failedReason
    expect(fx.mock!.stats.byStatus.get(500)).toBe(5); // every attempt of the id echo was made
  });

  it('a 401 echoing the key pauses the queue with a clean reason and exits 4', async () => {
    const { res, found, values } = await runAgainst(
      { 'a lighthouse that meets a bad gateway': () => ({ kind: 'echo-key', in: 'name', status: 401 }) },
      'auth',
    );
    expect(res.code, res.stderr).toBe(4);
    expect(found).toEqual([]);
    expect(values).toContain('auth'); // the pause reason
    expect(values.some((v) => v.startsWith('Stability API HTTP 401 [redacted]'))).toBe(true);
  });
});
