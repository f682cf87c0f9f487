/**
 * Redis URLs and the private redis-server. Every bad URL is a clear exit 3 from the real command,
 * against a redis-server of our own that requires a password (the shared server's configuration
 * is never touched), with the password never printed and never a silent database 0. The private
 * server `run` starts gets a password kept in a 0600 file, and its start trusts only its own child.
 */
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnRedisServer } from '../src/redis/private.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { randomPrefix } from './helpers/redis.js';

const PASSWORD = 'pw-0123456789abcdef-never-printed';

describe('Redis URLs, against a redis-server that requires a password', () => {
  let server: TestRedisServer;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    server = await startRedisServer(['--appendonly', 'no'], { password: PASSWORD });
    tmp = await tempDir();
  });
  afterAll(async () => {
    await server.destroy();
    await tmp.cleanup();
  });

  const url = (auth: string, rest = '') => `redis://${auth}127.0.0.1:${server.port}${rest}`;
  const status = (redisUrl: string) =>
    runCli(['status', '--queue', 'q'], cliEnv({ REDIS_URL: redisUrl, NIGHTSHIFT_PREFIX: randomPrefix() }), 20_000);

  const cases: Array<[string, () => string, RegExp]> = [
    ['a wrong password', () => url(':wrong-password-xyz@'), /refused the user or password: WRONGPASS/],
    ['no password', () => url(''), /needs a password: NOAUTH Authentication required/],
    [
      'a database the server does not have',
      () => url(`:${PASSWORD}@`, '/99'),
      /database 99 does not exist \(the server has 16: 0 to 15\)/,
    ],
    [
      'a database that is not a number',
      () => url(`:${PASSWORD}@`, '/abc'),
      /names database "abc", which is not a number/,
    ],
    [
      'a port out of range',
      () => `redis://:${PASSWORD}@127.0.0.1:99999`,
      /has port "99999", which is not a port number \(1–65535\)/,
    ],
    [
      'a port that is not a number',
      () => `redis://:${PASSWORD}@127.0.0.1:abc/0`,
      /has port "abc", which is not a port/,
    ],
    ['a password with a raw slash', () => url(`:${PASSWORD}/x@`), /is not a URL .* must be percent-encoded/],
    [
      'a scheme missing its colon',
      () => `redis//:${PASSWORD}@127.0.0.1:${server.port}`,
      /the Redis URL …@127\.0\.0\.1:\d+ is not a URL/,
    ],
    ['a scheme with one slash', () => `redis:/${PASSWORD}@127.0.0.1`, /the Redis URL …@127\.0\.0\.1 names no host/],
  ];
  for (const [what, make, message] of cases) {
    it(`${what}: exit 3 naming the problem, no stack trace, no password`, async () => {
      const r = await status(make());
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      for (const secret of [PASSWORD, 'wrong-password-xyz', PASSWORD.slice(0, 12)]) {
        expect(r.stdout + r.stderr).not.toContain(secret);
      }
    });
  }

  it('a database the server has is used, never database 0', async () => {
    const prefix = randomPrefix();
    const file = join(tmp.dir, 'db.txt');
    await writeFile(file, 'a lighthouse\n');
    const env = cliEnv({ REDIS_URL: url(`:${PASSWORD}@`, '/3'), NIGHTSHIFT_PREFIX: prefix });
    const r = await runCli(['enqueue', file, '--mock', '--queue', 'q'], env, 20_000);
    expect(r.code, r.stderr).toBe(0);
    const db3 = new Redis(url(`:${PASSWORD}@`, '/3'));
    const db0 = new Redis(url(`:${PASSWORD}@`, '/0'));
    try {
      expect((await db3.keys(`${prefix}*`)).length).toBeGreaterThan(0);
      expect(await db0.keys(`${prefix}*`)).toEqual([]);
    } finally {
      db3.disconnect();
      db0.disconnect();
    }
  });
});

describe('the private redis-server', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('requires a password kept in a mode-0600 file, reused by the next run, never printed', async () => {
    const out = join(tmp.dir, 'out');
    const env = cliEnv({ NIGHTSHIFT_DEFAULT_REDIS: 'redis://127.0.0.1:1' });
    const first = await runCli(['run', 'prompts/anime-sunset.txt', '--mock', '--out', out], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const file = join(out, '.redis', 'password');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(out, '.redis'))).mode & 0o077).toBe(0);
    const password = (await readFile(file, 'utf8')).trim();
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    const logs = [first.stdout, first.stderr, await readFile(join(out, 'mock', 'anime-sunset', 'run.log'), 'utf8')];
    for (const text of logs) expect(text).not.toContain(password);

    const second = await runCli(['run', 'prompts/anime-sunset.txt', '--mock', '--out', out], env);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/added 0, already present 7/);
    expect((await readFile(file, 'utf8')).trim()).toBe(password);
    expect((await readdir(join(out, '.redis'))).some((f) => f.startsWith('appendonly'))).toBe(true);
  });

  it('asks for its password: a client without it is refused', async () => {
    const dir = await tempDir('nightshift-private-');
    const port = await freePort();
    const s = await spawnRedisServer({ port, dir: dir.dir, password: 'abcdef0123456789abcdef0123456789' });
    const bare = new Redis({
      port,
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    bare.on('error', () => {});
    try {
      await bare.connect().catch(() => {});
      await expect(bare.ping()).rejects.toThrow(/NOAUTH/);
      const ok = new Redis(s.url);
      expect(await ok.ping()).toBe('PONG');
      ok.disconnect();
    } finally {
      bare.disconnect();
      await s.stop();
      await dir.cleanup();
    }
  });

  it('trusts only its own child: another server answering on the port is refused', async () => {
    const squatter = await startRedisServer(['--appendonly', 'no']);
    const dir = await tempDir('nightshift-private-');
    try {
      const err = await spawnRedisServer({ port: squatter.port, dir: dir.dir, timeoutMs: 10_000 }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/did not start on port \d+/);
      // The squatter is still the squatter: we did not kill or use it.
      const r = new Redis(squatter.url);
      expect(await r.ping()).toBe('PONG');
      r.disconnect();
    } finally {
      await squatter.destroy();
      await dir.cleanup();
    }
  });
});
