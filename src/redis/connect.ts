import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { EnvironmentError } from '../errors.js';

/** A Redis URL safe to print: user and password never appear. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '<invalid Redis URL>';
  }
}

/**
 * A connection for BullMQ workers and our scripts: retries forever (a worker whose Redis
 * goes away must carry on when it comes back), as BullMQ requires (maxRetriesPerRequest null).
 */
export function createRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    // Reconnect quickly at first, never slower than every 2 s, so a restarted Redis is found soon.
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: true,
    ...extra,
  });
}

/** Connects and pings; an unreachable Redis is an environment error (exit 3). */
export async function connectRedis(url: string, opts: { timeoutMs?: number } = {}): Promise<Redis> {
  const redis = createRedis(url, { connectTimeout: opts.timeoutMs ?? 3000 });
  redis.on('error', () => {}); // surfaced through the ping below, and logged by owners
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      opts.timeoutMs ?? 3000,
    );
    return redis;
  } catch (err) {
    redis.disconnect();
    throw new EnvironmentError(
      `Redis is unreachable at ${redactRedisUrl(url)}: ${(err as Error).message}. ` +
        'Start one (apt-get install redis-server, or `docker compose up -d redis`) or pass --redis URL / REDIS_URL.',
      { cause: err },
    );
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether something answers PING at the URL (used to decide whether `run` starts its own). */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const r = await connectRedis(url, { timeoutMs });
    r.disconnect();
    return true;
  } catch {
    return false;
  }
}

/** BullMQ is only correct under noeviction; warn (don't refuse: managed Redis may hide CONFIG). */
export async function checkRedisSettings(redis: Redis, logger: Logger): Promise<void> {
  try {
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    if (version && compareVersions(version, '6.2.0') < 0) {
      logger.warn({ version }, 'Redis 6.2 or later is advised');
    }
    const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (res[1] && res[1] !== 'noeviction') {
      logger.warn(
        { policy: res[1] },
        'Redis maxmemory-policy is not noeviction: jobs may be evicted under memory pressure',
      );
    }
  } catch {
    // CONFIG/INFO may be disabled on managed Redis.
  }
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
}

export interface RedisServerProcess {
  url: string;
  /** Stops the server (SIGTERM flushes the append-only file); resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A port free on 127.0.0.1 right now: bind one, then let it go. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Spawns `redis-server` on 127.0.0.1:`port` with its files under `dir` (noeviction, no RDB
 * snapshots, plus `args`) and resolves once it answers. Rejects with the spawn error (ENOENT when
 * there is no redis-server on PATH) or when it does not answer within `timeoutMs`.
 */
export async function spawnRedisServer(opts: {
  port: number;
  dir: string;
  args?: string[];
  bin?: string;
  timeoutMs?: number;
}): Promise<RedisServerProcess> {
  const args = [
    '--port',
    String(opts.port),
    '--bind',
    '127.0.0.1',
    '--dir',
    opts.dir,
    '--save',
    '',
    '--daemonize',
    'no',
    '--maxmemory-policy',
    'noeviction',
    '--logfile',
    join(opts.dir, 'redis.log'),
    ...(opts.args ?? []),
  ];
  const child: ChildProcess = spawn(opts.bin ?? 'redis-server', args, { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve());
  });
  const url = `redis://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  while (!(await redisAnswers(url, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${opts.port} (see ${join(opts.dir, 'redis.log')})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Starts a private redis-server whose append-only file lives under `dir`, so an
 * interrupted `run` resumes where it stopped when run again.
 */
export async function startPrivateRedis(dir: string, logger: Logger, bin = 'redis-server'): Promise<PrivateRedis> {
  await mkdir(dir, { recursive: true });
  let server: RedisServerProcess;
  try {
    server = await spawnRedisServer({
      port: await freePort(),
      dir,
      bin,
      args: ['--appendonly', 'yes', '--appendfsync', 'everysec'],
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new EnvironmentError(
        'No Redis answers on 127.0.0.1:6379 and no redis-server is on PATH to start a private one. ' +
          'Install one (apt-get install redis-server / brew install redis) or run `docker compose up -d redis`, ' +
          'or point --redis / REDIS_URL at yours.',
        { cause: err },
      );
    }
    throw new EnvironmentError(`the private ${(err as Error).message}`, { cause: err });
  }
  logger.info({ url: server.url, dir }, 'started a private redis-server');
  return { url: server.url, stop: () => server.stop() };
}
