/**
 * A real Redis Cluster for a test: six redis-server processes in cluster mode on free loopback
 * ports (three masters, three replicas), each in its own tmp dir, created with
 * `redis-cli --cluster create`. A master can be SIGKILLed; its replica then takes over.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { spawnRedisServer, type RedisServerProcess } from '../../src/redis/private.js';
import { keySlot } from './key-slot.js';
import { until } from './wait.js';

const run = promisify(execFile);

/** Why a cluster cannot be started here (no redis-server or redis-cli on PATH), or null. */
export function clusterUnsupported(): string | null {
  for (const bin of ['redis-server', 'redis-cli']) {
    if (spawnSync(bin, ['--version'], { stdio: 'ignore' }).status !== 0) {
      return `${bin} is not on PATH: install Redis 7 (apt-get install redis-server) to run the Redis Cluster tests`;
    }
  }
  return null;
}

export interface TestRedisCluster {
  /** `127.0.0.1:P1,127.0.0.1:P2,…` (URLs carrying the password when there is one), as --redis-cluster takes it. */
  nodes: string;
  /** The port of the master serving the key's slot now. */
  masterOf(key: string): Promise<number>;
  /** SIGKILLs the node on `port`. */
  kill(port: number): Promise<void>;
  /** Waits until every live node says `cluster_state:ok`, every slot has a live master and every replica synced. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their dirs. */
  destroy(): Promise<void>;
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });

/** A port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + 10_000) || taken.has(port - 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
}

/** The password every node of the test cluster wants, when it has one (set by startRedisCluster). */
let nodePassword: string | undefined;

const nodeClient = (port: number) =>
  new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, password: nodePassword });

async function nodeSays(port: number, ...cmd: string[]): Promise<string | null> {
  const r = nodeClient(port);
  r.on('error', () => {});
  try {
    await r.connect();
    return String(await r.call(cmd[0]!, ...cmd.slice(1)));
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

type SlotRange = [number, number, [string, number]];

/** CLUSTER SLOTS as one node sees it: [from, to, [host, port], …replicas]; null when it does not answer. */
async function clusterSlots(port: number): Promise<SlotRange[] | null> {
  const r = nodeClient(port);
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.call('CLUSTER', 'SLOTS')) as SlotRange[];
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

async function slotMaster(ports: number[], slot: number): Promise<number> {
  for (const port of ports) {
    const hit = (await clusterSlots(port))?.find(([from, to]) => slot >= from && slot <= to);
    if (hit) return hit[2][1];
  }
  throw new Error(`no live node knows slot ${slot}`);
}

/** Every node says the cluster is ok, no slot is served by a dead node, every replica's link is up. */
async function healthy(live: number[]): Promise<boolean> {
  const infos = await Promise.all(live.map((p) => nodeSays(p, 'CLUSTER', 'INFO')));
  if (!infos.every((i) => i?.includes('cluster_state:ok'))) return false;
  const views = await Promise.all(live.map((p) => clusterSlots(p)));
  if (!views.every((v) => v !== null && v.every((range) => live.includes(range[2][1])))) return false;
  const repl = await Promise.all(live.map((p) => nodeSays(p, 'INFO', 'replication')));
  return repl.every((r) => r !== null && (r.includes('role:master') || r.includes('master_link_status:up')));
}

async function startNodes(
  count: number,
  password?: string,
): Promise<{ ports: number[]; dirs: string[]; servers: RedisServerProcess[] }> {
  const taken = new Set<number>();
  const ports: number[] = [];
  const dirs: string[] = [];
  const servers: RedisServerProcess[] = [];
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'];
  // No delay before a replica's first full sync: a replica that never synced may not take over.
  args.push('--cluster-node-timeout', '2000', '--appendonly', 'no', '--repl-diskless-sync-delay', '0');
  // Replicas log in to their master with it (on the command line: a test's throwaway password).
  if (password !== undefined) args.push('--masterauth', password);
  for (let i = 0; i < count; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'nightshift-cluster-'));
    dirs.push(dir);
    // A port found free can be taken before the node binds it (another test file's cluster, whose
    // bus ports sit 10000 above its own): then the node starts again on another port.
    for (let attempt = 1; ; attempt++) {
      const port = await freeClusterPort(taken);
      try {
        servers.push(await spawnRedisServer({ port, dir, args, timeoutMs: 15_000, ...(password ? { password } : {}) }));
        ports.push(port);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }
  return { ports, dirs, servers };
}

/** `password`: every node requires it, and `nodes` carries it in URL form. */
export async function startRedisCluster(opts: { password?: string } = {}): Promise<TestRedisCluster> {
  nodePassword = opts.password;
  const { ports, dirs, servers } = await startNodes(6, opts.password);
  const alive = new Set(ports);
  const destroy = async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  const waitHealthy = async (timeoutMs = 30_000) => {
    await until('a healthy cluster', () => healthy([...alive]), timeoutMs);
  };
  try {
    const addrs = ports.map((p) => `127.0.0.1:${p}`);
    await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 60_000,
      // redis-cli reads the password from the environment, off its command line.
      env: { ...process.env, ...(opts.password ? { REDISCLI_AUTH: opts.password } : {}) },
    });
    await waitHealthy();
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    nodes: ports
      .map((p) => (opts.password ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${p}` : `127.0.0.1:${p}`))
      .join(','),
    masterOf: (key) => slotMaster([...alive], keySlot(key)),
    async kill(port) {
      alive.delete(port);
      await servers[ports.indexOf(port)]!.stop('SIGKILL');
    },
    waitHealthy,
    destroy,
  };
}
