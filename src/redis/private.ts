import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { EnvironmentError } from '../errors.js';
import { openRegularFile } from '../regular-file.js';
import { redactRedisUrl } from './url.js';

/**
 * A redis-server nightshift starts itself: for `run` when no Redis answers (its append-only file
 * under the output folder, so an interrupted run resumes), and for tests. It is trusted only once
 * the process we spawned answers: whatever else may be listening on the port is not it, so the
 * start loop checks our child is alive and that the server answering (with our password) reports
 * our child's pid.
 */

export interface RedisServerProcess {
  /** The URL to connect with (the password in it, when there is one: never print it). */
  url: string;
  /** Stops the server (SIGTERM flushes the append-only file); resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
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

export interface SpawnOptions {
  port: number;
  dir: string;
  args?: string[];
  bin?: string;
  timeoutMs?: number;
  /** Clients must give it (`requirepass`); passed on stdin, never on the command line `ps` shows. */
  password?: string;
}

/** The pid of the server answering at `url`, or null when none answers (or it wants another password). */
async function answeringPid(url: string): Promise<number | null> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    const info = await r.info('server');
    // No process id in the answer (a server still starting, or not a redis-server): not known yet.
    const m = /process_id:(\d+)/.exec(info);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Spawns `redis-server` on 127.0.0.1:`port` with its files under `dir` (noeviction, no RDB
 * snapshots, plus `args`) and resolves once it answers. Rejects with the spawn error (ENOENT when
 * there is no redis-server on PATH), when the child exits, when another server holds the port, or
 * when it does not answer within `timeoutMs`.
 */
export async function spawnRedisServer(opts: SpawnOptions): Promise<RedisServerProcess> {
  const log = join(opts.dir, 'redis.log');
  const args = [
    ...(opts.password !== undefined ? ['-'] : []), // "-": more configuration on stdin
    ...['--port', String(opts.port), '--bind', '127.0.0.1', '--dir', opts.dir, '--save', ''],
    ...['--daemonize', 'no', '--maxmemory-policy', 'noeviction', '--logfile', log],
    ...(opts.args ?? []),
  ];
  const child: ChildProcess = spawn(opts.bin ?? 'redis-server', args, { stdio: ['pipe', 'ignore', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve());
  });
  child.stdin!.end(opts.password !== undefined ? `requirepass ${opts.password}\n` : '');
  const auth = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}@` : '';
  const url = `redis://${auth}127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    const pid = alive(child) ? await answeringPid(url) : null;
    if (pid !== null && pid === child.pid) break;
    if (!alive(child) || pid !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      const why = pid !== null ? `another server (pid ${pid}) answers on port ${opts.port}` : `see ${log}`;
      throw new Error(`redis-server did not start on port ${opts.port} (${why})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!alive(child)) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const PASSWORD_FILE = 'password';

/**
 * The private server's password, kept in `<dir>/password` (mode 0600) and reused on the next run.
 * A link or anything but a regular file there is refused; a file others may read is tightened.
 */
async function privatePassword(dir: string): Promise<string> {
  const file = join(dir, PASSWORD_FILE);
  const opened = await openRegularFile(file, { maxBytes: 1024, noFollow: true });
  if (opened.ok) {
    try {
      if (((await opened.fh.stat()).mode & 0o077) !== 0) await opened.fh.chmod(0o600);
      const text = (await opened.fh.readFile('utf8')).trim();
      if (/^[0-9a-f]{32,}$/.test(text)) return text;
      throw new EnvironmentError(`${file} does not hold a password nightshift wrote; remove it`);
    } finally {
      await opened.fh.close();
    }
  }
  if (opened.code !== 'ENOENT') throw new EnvironmentError(`${file} ${opened.message}; remove it`);
  const password = randomBytes(24).toString('hex');
  // O_EXCL: never onto something another process put there meanwhile.
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(`${password}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return password;
}

/** The server's folder: a real folder only this user may enter (it holds the password and the data). */
async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) {
    throw new EnvironmentError(`${dir} is not a folder (a symbolic link?); nightshift keeps its private Redis there`);
  }
}

/**
 * Starts a private redis-server whose append-only file lives under `dir`, so an interrupted
 * `run` resumes where it stopped when run again. It requires a password (`<dir>/password`).
 */
export async function startPrivateRedis(dir: string, logger: Logger, bin = 'redis-server'): Promise<PrivateRedis> {
  await privateDir(dir);
  const password = await privatePassword(dir);
  let server: RedisServerProcess;
  try {
    server = await spawnRedisServer({
      port: await freePort(),
      dir,
      bin,
      password,
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
  logger.info({ url: redactRedisUrl(server.url), dir }, 'started a private redis-server');
  return { url: server.url, stop: () => server.stop() };
}
