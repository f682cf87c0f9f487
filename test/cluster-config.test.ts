/** `--redis-cluster` / REDIS_CLUSTER_NODES: how the node list is read, kept secret, and exclusive with --redis. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { usageMessage } from './helpers/usage.js';
import { clusterOptions } from '../src/redis/cluster-connect.js';
import { isClusterTarget, parseClusterNodes, redactClusterNodes } from '../src/redis/cluster.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';

const usage = usageMessage;

describe('--redis-cluster', () => {
  it('reads HOST:PORT lists and URLs; a password on one node is the cluster’s', () => {
    expect(parseClusterNodes('10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
    expect(parseClusterNodes('rediss://app:s%40cret@h1:7000,h2:7001')).toMatchObject({
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      username: 'app',
      password: 's@cret',
      tls: true,
    });
    for (const bad of ['', 'h1', 'h1:0', 'h1:99999', 'h1:x', 'http://h1:7000', 'redis://h1:7000/2']) {
      expect(usage(() => parseClusterNodes(bad))).toMatch(/^--redis-cluster: /);
    }
    expect(usage(() => parseClusterNodes('redis://:hunter2@h1:7000/3'))).not.toContain('hunter2');
    // A password without a scheme (or with a scheme mistyped) is never a host name, nor echoed.
    for (const bad of [':hunter2@h1:7000', 'hunter2@h1:7000', 'redis:/hunter2@h1:7000', 'hunter2:pw@h1:7000']) {
      const message = usage(() => parseClusterNodes(bad));
      expect(message).toMatch(/^--redis-cluster: /);
      expect(message).not.toContain('hunter2');
    }
    expect(redactClusterNodes('redis://:hunter2@h1:7000,rediss://u:p@h2:7001')).toBe(
      'redis://h1:7000,rediss://h2:7001',
    );
  });

  it('becomes the Redis target, its password a secret; with --redis it is a usage error naming both', () => {
    const c = loadConfig({ redisCluster: 'redis://:hunter2@127.0.0.1:7000,127.0.0.1:7001' }, {});
    expect(c.cluster).toBe(true);
    expect(isClusterTarget(c.redisUrl!)).toBe(true);
    expect(c.secrets).toContain('hunter2');
    expect(loadConfig({}, { REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).cluster).toBe(true);
    expect(loadConfig({}, {}).cluster).toBe(false);
    const msg = usage(() => loadConfig({ redis: 'redis://127.0.0.1:6379' }, { REDIS_CLUSTER_NODES: '127.0.0.1:7000' }));
    expect(msg).toMatch(/--redis and env REDIS_CLUSTER_NODES both name a Redis/);
  });

  it('rides out a failover: waits on redirections long enough, never gives up a command on its own', () => {
    const o = clusterOptions(parseClusterNodes('127.0.0.1:7000'), {});
    expect(o.redisOptions?.maxRetriesPerRequest).toBeNull();
    expect(o.enableOfflineQueue).toBe(true);
    // A replica takes over in about 4 s: redirections must cover several times that.
    expect(o.maxRedirections! * o.retryDelayOnFailover!).toBeGreaterThanOrEqual(20_000);
    expect(o.maxRedirections! * o.retryDelayOnClusterDown!).toBeGreaterThanOrEqual(20_000);
    expect(o.maxRedirections! * o.retryDelayOnTryAgain!).toBeGreaterThanOrEqual(20_000);
  });

  it('exits 2 on every command that talks to Redis when both are given', async () => {
    for (const cmd of [['status'], ['work', '--mock'], ['pause']]) {
      const r = await runCli([...cmd, '--redis', 'redis://127.0.0.1:1', '--redis-cluster', '127.0.0.1:2'], cliEnv({}));
      expect({ cmd, code: r.code }).toEqual({ cmd, code: 2 });
      expect(r.stderr).toMatch(/--redis and --redis-cluster/);
    }
  });

  it('says so (exit 3) when the node is a single Redis, not a cluster', async () => {
    const single = new URL(redisUrl());
    const r = await runCli(['status', '--redis-cluster', `${single.hostname}:${single.port || 6379}`], cliEnv({}));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/is not a Redis Cluster .*--redis/);
  });
});
