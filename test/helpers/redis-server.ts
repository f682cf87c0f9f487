/** A private redis-server per test: its own free port and its own --dir, stoppable and restartable. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedisServer {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM flushes the append-only file); resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port with the same dir (and so the same data). */
  start(): Promise<void>;
  /** Stops it and removes its dir. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 300 });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** `extraArgs` go to redis-server as they are, e.g. `['--appendonly', 'yes']`. */
export async function startRedisServer(extraArgs: string[] = ['--appendonly', 'yes', '--appendfsync', 'always']): Promise<TestRedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'nightshift-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;

  const start = async () => {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no',
      '--maxmemory-policy', 'noeviction', '--logfile', join(dir, 'redis.log'), ...extraArgs,
    ];
    const c = spawn('redis-server', args, { stdio: 'ignore' });
    child = c;
    const deadline = Date.now() + 10_000;
    while (!(await answers(url))) {
      if (c.exitCode !== null || Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${port} (see ${join(dir, 'redis.log')})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    url, port, dir, stop, start,
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
