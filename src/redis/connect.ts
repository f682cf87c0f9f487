import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { EnvironmentError } from '../errors.js';
import { within } from '../timeouts.js';
import { checkRedisUrl } from './url.js';
import { isClusterTarget } from './cluster.js';
import { CLUSTER_FAILOVER_MS, createCluster, shownCluster } from './cluster-connect.js';

export { redactRedisUrl } from './url.js';
export { startPrivateRedis, type PrivateRedis } from './private.js';

/**
 * A connection for BullMQ workers and our scripts: retries forever (a worker whose Redis
 * goes away must carry on when it comes back), as BullMQ requires (maxRetriesPerRequest null).
 */
export function createRedis(url: string, extra: RedisOptions = {}): Redis {
  if (isClusterTarget(url)) return createCluster(url, extra);
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    // Reconnect quickly at first, never slower than every 2 s, so a restarted Redis is found soon.
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: true,
    ...extra,
  });
}

/** What the server said about our credentials, in words: the server's own reply names no secret. */
function authProblem(shown: string, reply: string): string | null {
  if (/WRONGPASS|invalid password|invalid username-password/i.test(reply)) {
    return `Redis at ${shown} refused the user or password: ${reply}`;
  }
  if (/NOAUTH/.test(reply)) {
    return `Redis at ${shown} needs a password: ${reply} (give it in the URL: redis://:PASSWORD@host:port)`;
  }
  if (/NOPERM/.test(reply)) return `Redis at ${shown} does not let this user run nightshift's commands: ${reply}`;
  return null;
}

/** Selects the URL's database explicitly: the client moves on silently when its own SELECT fails. */
async function checkDatabase(redis: Redis, shown: string, db: number): Promise<void> {
  if (db === 0) return;
  try {
    await redis.select(db);
  } catch (err) {
    let count = '';
    try {
      const res = (await redis.config('GET', 'databases')) as string[];
      if (res[1]) count = ` (the server has ${res[1]}: 0 to ${Number(res[1]) - 1})`;
    } catch {
      // CONFIG may be disabled on managed Redis: say what we know.
    }
    throw new EnvironmentError(`Redis at ${shown}: database ${db} does not exist${count}`, { cause: err });
  }
}

/**
 * Connects and pings; every way of failing is an environment error (exit 3) that names the
 * problem: a malformed URL, a bad port, a database that is not a number or that the server does
 * not have, a refused password, an unreachable server. The password never appears.
 */
export async function connectRedis(url: string, opts: { timeoutMs?: number } = {}): Promise<Redis> {
  const { shown, db } = isClusterTarget(url) ? { shown: shownCluster(url), db: 0 } : checkRedisUrl(url);
  // A cluster mid-failover is not ready until a replica took over (seconds): wait that out. A node
  // list where nothing answers still fails at once (the slots cannot be read from any node).
  const timeoutMs = opts.timeoutMs ?? (isClusterTarget(url) ? CLUSTER_FAILOVER_MS : 3000);
  const redis = createRedis(url, { connectTimeout: timeoutMs });
  // The reason behind a closed connection arrives as an error event; the promise only says "closed".
  const seen: { error?: Error } = {};
  redis.on('error', (err: Error) => (seen.error = err));
  try {
    const answered = await within(
      redis.connect().then(() => redis.ping()),
      timeoutMs,
      null,
    );
    if (answered === null) throw new Error(`no answer within ${timeoutMs} ms`);
  } catch (err) {
    redis.disconnect();
    // The event says why ("connect ECONNREFUSED …", "WRONGPASS …"); the rejection often only "closed".
    const said = reasons(seen.error, err as Error);
    const auth = said.map((m) => authProblem(shown, m)).find((m) => m !== null);
    if (auth) throw new EnvironmentError(auth, { cause: err });
    if (said.some((m) => /cluster support disabled/i.test(m))) {
      throw new EnvironmentError(`${shown} is not a Redis Cluster (${said[0]}): give a single server with --redis`, {
        cause: err,
      });
    }
    throw new EnvironmentError(
      `Redis is unreachable at ${shown}: ${said[0]!.replace(/\.+$/, '')}. ` +
        (isClusterTarget(url)
          ? 'Check the nodes of --redis-cluster / REDIS_CLUSTER_NODES.'
          : 'Start one (apt-get install redis-server, or `docker compose up -d redis`) or pass --redis URL / REDIS_URL.'),
      { cause: err },
    );
  }
  try {
    await checkDatabase(redis, shown, db);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}

/** What went wrong, most telling first: a cluster client only says "Failed to refresh slots cache" and keeps the node's own reply aside. */
function reasons(...errs: Array<Error | undefined>): string[] {
  const node = (e?: Error) => (e as { lastNodeError?: Error } | undefined)?.lastNodeError?.message;
  return [...errs.map(node), ...errs.map((e) => e?.message)].filter((m): m is string => !!m);
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

/** The servers a connection reaches: every master of a cluster (each holds some queues), else the one. */
function serversOf(redis: Redis): Redis[] {
  const c = redis as unknown as { isCluster?: boolean; nodes?: (role: 'master') => Redis[] };
  return c.isCluster && c.nodes ? c.nodes('master') : [redis];
}

/** BullMQ is only correct under noeviction; warn (don't refuse: managed Redis may hide CONFIG). */
export async function checkRedisSettings(redis: Redis, logger: Logger): Promise<void> {
  for (const server of serversOf(redis)) await checkServerSettings(server, logger);
}

async function checkServerSettings(redis: Redis, logger: Logger): Promise<void> {
  const at = `${redis.options.host ?? ''}:${redis.options.port ?? ''}`;
  try {
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    if (version && compareVersions(version, '6.2.0') < 0) {
      logger.warn({ version, at }, 'Redis 6.2 or later is advised');
    }
    const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (res[1] && res[1] !== 'noeviction') {
      logger.warn(
        { policy: res[1], at },
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
