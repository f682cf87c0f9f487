/**
 * Redis Cluster as the user names it (`--redis-cluster`, REDIS_CLUSTER_NODES): a comma-separated
 * list of seed nodes, each `HOST:PORT` or a URL `redis://[user:password@]HOST:PORT` (`rediss://`
 * for TLS). A user or password given on any node applies to every node: a cluster has one ACL.
 * The rest of nightshift passes a cluster around as one string, a "target" (`cluster:` + the list),
 * so every place that opens a connection from a Redis URL opens the cluster the same way.
 */
import { UsageError } from '../errors.js';
import { dropUserinfo } from './url.js';

export interface ClusterNode {
  host: string;
  port: number;
}

export interface ClusterSpec {
  nodes: ClusterNode[];
  username?: string;
  password?: string;
  tls: boolean;
}

const TARGET = 'cluster:';

/** The target string for a list of cluster nodes. */
export function clusterTarget(nodes: string): string {
  return `${TARGET}${nodes}`;
}

export function isClusterTarget(target: string): boolean {
  return target.startsWith(TARGET);
}

function nodesText(target: string): string {
  return isClusterTarget(target) ? target.slice(TARGET.length) : target;
}

function checkPort(raw: string, entry: string, name: string): number {
  const port = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || port < 1 || port > 65535) {
    throw new UsageError(`${name}: "${entry}" needs a port from 1 to 65535 (HOST:PORT)`);
  }
  return port;
}

interface ParsedEntry extends ClusterNode {
  username?: string;
  password?: string;
  tls: boolean;
}

function parseUrlEntry(entry: string, name: string): ParsedEntry {
  const shown = dropUserinfo(entry);
  let u: URL;
  try {
    u = new URL(entry);
  } catch {
    throw new UsageError(`${name}: "${shown}" is not a URL (a password with / # ? or @ must be percent-encoded)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UsageError(`${name}: "${shown}" must start with redis:// or rediss://`);
  }
  // A cluster has only database 0: a database in the URL would be silently ignored.
  if (u.pathname !== '' && u.pathname !== '/' && u.pathname !== '/0') {
    throw new UsageError(`${name}: "${shown}" names a database; Redis Cluster has only database 0`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const out: ParsedEntry = { host, port: u.port === '' ? 6379 : checkPort(u.port, shown, name), tls: false };
  out.tls = u.protocol === 'rediss:';
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  return out;
}

function parseEntry(entry: string, name: string): ParsedEntry {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(entry)) return parseUrlEntry(entry, name);
  const m = /^(\[[^\]]+\]|[^:[\]]+):([^:]*)$/.exec(entry);
  if (!m || m[1]!.includes('@')) {
    const hint = entry.includes('@') ? ' (a password goes in a URL: redis://:PASSWORD@HOST:PORT)' : '';
    throw new UsageError(`${name}: "${dropUserinfo(entry).slice(0, 80)}" is not HOST:PORT${hint}`);
  }
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: checkPort(m[2]!, entry, name), tls: false };
}

/** Reads a node list or a target; throws UsageError (exit 2) naming the entry at fault, never its password. */
export function parseClusterNodes(raw: string, name = '--redis-cluster'): ClusterSpec {
  const entries = nodesText(raw)
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) throw new UsageError(`${name}: expected HOST:PORT[,HOST:PORT…]`);
  const parsed = entries.map((e) => parseEntry(e, name));
  const spec: ClusterSpec = { nodes: parsed.map(({ host, port }) => ({ host, port })), tls: false };
  for (const p of parsed) {
    if (p.username && !spec.username) spec.username = p.username;
    if (p.password && !spec.password) spec.password = p.password;
    if (p.tls) spec.tls = true;
  }
  return spec;
}

/** The settings-table parser: the text, once it is known to parse. */
export function parseClusterSetting(raw: string, name: string): string {
  parseClusterNodes(raw, name);
  return raw.trim();
}

/** The node list (or a target) safe to print: no user, no password. */
export function redactClusterNodes(raw: string): string {
  return nodesText(raw)
    .split(',')
    .map((e) => dropUserinfo(e.trim()))
    .join(',')
    .slice(0, 300);
}

/** The passwords a node list carries, for the list of values never to print. */
export function clusterSecrets(raw: string): string[] {
  try {
    const spec = parseClusterNodes(raw);
    return spec.password ? [spec.password] : [];
  } catch {
    return [];
  }
}
