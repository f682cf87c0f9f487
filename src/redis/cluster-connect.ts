import { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import { parseClusterNodes, redactClusterNodes, type ClusterSpec } from './cluster.js';

/**
 * How long a command waits for a failover before it fails: a killed master's replica takes over
 * after the cluster's node timeout plus an election (about 4 s with a 2 s node timeout). ioredis
 * counts every wait (CLUSTERDOWN, TRYAGAIN, a closed node, MOVED) as a redirection, and at 16 of
 * them 100 ms apart gives up with "Too many Cluster redirections" long before the replica is up.
 */
const RETRY_DELAY_MS = 200;
export const CLUSTER_FAILOVER_MS = 30_000;

/**
 * Options that ride out a failover: commands queue while no node answers (offline queue), wait on
 * CLUSTERDOWN, TRYAGAIN and a lost master, follow MOVED after refreshing the slots, and never give
 * up on their own (BullMQ requires maxRetriesPerRequest null). Reads go to masters only: a
 * replica may lag behind a claim or a sent mark.
 */
export function clusterOptions(spec: ClusterSpec, extra: RedisOptions): ClusterOptions {
  const { lazyConnect = true, enableAutoPipelining, connectTimeout = 10_000, ...rest } = extra;
  return {
    lazyConnect,
    enableAutoPipelining: enableAutoPipelining ?? false,
    enableOfflineQueue: true,
    // The ready check waits for cluster_state:ok, and a client that starts while a master is down
    // never leaves it, even once the replica took over: connect at once, and let commands for the
    // missing slots wait on CLUSTERDOWN like any other.
    enableReadyCheck: false,
    scaleReads: 'master',
    maxRedirections: Math.ceil(CLUSTER_FAILOVER_MS / RETRY_DELAY_MS),
    retryDelayOnFailover: RETRY_DELAY_MS,
    retryDelayOnClusterDown: RETRY_DELAY_MS,
    retryDelayOnTryAgain: RETRY_DELAY_MS,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: 2000,
    // Reconnect quickly at first, never slower than every 2 s, like a single Redis.
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    redisOptions: {
      maxRetriesPerRequest: null,
      connectTimeout,
      ...(spec.username ? { username: spec.username } : {}),
      ...(spec.password ? { password: spec.password } : {}),
      ...(spec.tls ? { tls: {} } : {}),
      ...rest,
    },
  };
}

/**
 * A Redis Cluster client for a target. It is handed around as a `Redis`: every command nightshift
 * and BullMQ send is one a cluster client routes (all keys of a call in one slot), and BullMQ
 * tells the two apart itself.
 */
export function createCluster(target: string, extra: RedisOptions = {}): Redis {
  const spec = parseClusterNodes(target);
  return new Cluster(spec.nodes, clusterOptions(spec, extra)) as unknown as Redis;
}

/** The cluster's nodes without credentials, for messages. */
export function shownCluster(target: string): string {
  return `cluster ${redactClusterNodes(target)}`;
}
