/** A private redis-server per test: its own free port and its own --dir, stoppable and restartable. */
import { freePort, spawnRedisServer, type RedisServerProcess } from '../../src/redis/private.js';
import { tempDir } from './temp.js';

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

/** `extraArgs` go to redis-server as they are, e.g. `['--appendonly', 'yes']`; a `password` makes it require one. */
export async function startRedisServer(
  extraArgs: string[] = ['--appendonly', 'yes', '--appendfsync', 'always'],
  opts: { password?: string } = {},
): Promise<TestRedisServer> {
  const { dir, cleanup } = await tempDir('nightshift-redis-');
  let port = await freePort();
  let server: RedisServerProcess | null = null;
  const start = async () => {
    server = await spawnRedisServer({ port, dir, args: extraArgs, timeoutMs: 10_000, ...opts });
  };
  const stop = async (signal?: NodeJS.Signals) => {
    const s = server;
    server = null;
    await s?.stop(signal);
  };
  // A port found free can be taken before the server binds it (another test file's server): the
  // first start tries another; a restart keeps its port, as a restarted Redis does.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
      port = await freePort();
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    async destroy() {
      await stop();
      await cleanup();
    },
  };
}
