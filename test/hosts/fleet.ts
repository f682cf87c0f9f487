/**
 * The pieces of a many-host run: a redis-server reachable only on the bridge, and `nightshift work`
 * processes inside the namespaces. Everything is driven from outside, as a user would: processes,
 * their exit codes and logs, Redis over TCP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { BIN, collect, ROOT, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { sleep } from '../helpers/wait.js';
import type { NetHost, Network } from './netns.js';

export interface BridgeRedis {
  url: string;
  /** The test's own connection, for measurements (INFO, CLIENT LIST). */
  client: Redis;
  stop(): Promise<void>;
}

/** A port free on `ip` right now. */
export function freePortOn(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * redis-server bound to the bridge address only, with a password (it is not on loopback, so Redis
 * would refuse every client otherwise): the namespaces reach it over their links.
 */
export async function startBridgeRedis(net: Network): Promise<BridgeRedis> {
  const ip = net.bridgeIp;
  const { dir, cleanup } = await tempDir('redis-', net.dir);
  const port = await freePortOn(ip);
  const password = randomBytes(12).toString('hex');
  const child = spawn(
    'redis-server',
    [
      ...['--bind', ip, '--port', String(port), '--requirepass', password, '--dir', dir],
      ...['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--daemonize', 'no'],
      ...['--logfile', join(dir, 'redis.log')],
    ],
    { stdio: 'ignore' },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve());
  });
  await net.adopt(child.pid!);
  const url = `redis://:${password}@${ip}:${port}`;
  let client: Redis | undefined;
  const stop = async () => {
    client?.disconnect();
    child.kill('SIGKILL');
    await exited(child);
    await cleanup();
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      client = c;
      break;
    } catch (err) {
      c.disconnect();
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`redis-server on ${ip}:${port} did not answer: ${(err as Error).message}`, { cause: err });
      }
      await sleep(100);
    }
  }
  return { url, client, stop };
}

export interface HostWorker {
  host: NetHost;
  child: ChildProcess;
  result: Promise<CliResult>;
  started(): boolean;
  /** Images this worker logged as saved. */
  saved(): number;
  /** Stops it the way an operator would (SIGTERM), or kills it (SIGKILL); resolves once it is gone. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<CliResult>;
}

/** `nightshift work …` inside the host's namespace. */
export function startHostWorker(net: Network, host: NetHost, opts: { args: string[]; env: NodeJS.ProcessEnv }) {
  const child = net.spawnIn(host, process.execPath, [BIN, 'work', ...opts.args], {
    env: opts.env,
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Read as it arrives: the result only comes at exit.
  let seen = '';
  let saved = 0;
  child.stdout!.on('data', (d: Buffer) => {
    const text = d.toString();
    saved += text.split('"image saved"').length - 1;
    seen += text;
  });
  const result = collect(child);
  const w: HostWorker = {
    host,
    child,
    result,
    started: () => seen.includes('"worker started"'),
    saved: () => saved,
    async stop(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return result;
    },
  };
  return w;
}

/** Calls per Redis command since the last CONFIG RESETSTAT. */
export async function commandStats(client: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await client.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Open connections per client address (the test's own included). */
export async function clientsByAddress(client: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of String(await client.client('LIST')).split('\n')) {
    const m = / addr=([^ ]+):\d+ /.exec(` ${line}`);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
  }
  return out;
}

/** CPU seconds the Redis server has used (user + system), to compare over a batch. */
export async function redisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}
