/**
 * A small network of "hosts" on one Linux machine: network namespaces joined to the host by veth
 * pairs on a bridge. The host end of the bridge has the .1 address (Redis and the fake API listen
 * there); host i is .(10 + i). The namespaces have no default route, so their traffic reaches only
 * this subnet. Every name carries this run's id and the owner's pid, so a crashed run can neither
 * clash with the next nor be mistaken for a live one: `sweepLeftovers` removes what dead runs left
 * (namespaces and what still runs in them, links, the run's folder and the processes it adopted).
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TAG = 'nshosts';

export interface NetHost {
  /** Network namespace name. */
  ns: string;
  ip: string;
  /** The host end of its veth pair: taking it down cuts the host off. */
  link: string;
}

export interface Network {
  /** The host side's address on the bridge. */
  bridgeIp: string;
  /** A folder for this run's files (Redis, output), removed with the network. */
  dir: string;
  hosts: NetHost[];
  /** Takes the host's link down: packets to and from it are dropped, as with a pulled cable. */
  cut(host: NetHost): Promise<void>;
  restore(host: NetHost): Promise<void>;
  /** Starts `command` inside the host's namespace (the same process: `ip netns exec` execs it). */
  spawnIn(host: NetHost, command: string, args: string[], opts: SpawnOptions): ChildProcess;
  /** Records a process started on the host side, for a later run to kill if this one crashes. */
  adopt(pid: number): Promise<void>;
  /** Kills what still runs in the namespaces, removes them and the bridge. Safe to call twice. */
  destroy(): Promise<void>;
}

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

async function ipJson<T>(...args: string[]): Promise<T[]> {
  const out = (await ip('-j', ...args)).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The owner pid in a name or alias `nshosts-<pid>-<id>…`, or null when the name is not ours. */
function ownerOf(name: string | undefined): number | null {
  const m = new RegExp(`^${TAG}-(\\d+)-`).exec(name ?? '');
  return m ? Number(m[1]) : null;
}

const pidsIn = (text: string): number[] =>
  text
    .split('\n')
    .map(Number)
    .filter((n) => n > 0);

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function killAllIn(ns: string): Promise<void> {
  for (const pid of pidsIn(await ip('netns', 'pids', ns).catch(() => ''))) kill(pid);
}

/** Kills the processes a dead run adopted (those still running the same program) and removes its folder. */
async function removeRunDir(dir: string): Promise<void> {
  for (const line of (await readFile(join(dir, 'pids'), 'utf8').catch(() => '')).split('\n')) {
    const [pid, program] = line.split(' ');
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (program && cmdline.startsWith(program)) kill(Number(pid));
  }
  await rm(dir, { recursive: true, force: true });
}

async function deleteNamespace(ns: string): Promise<void> {
  await killAllIn(ns);
  await ip('netns', 'del', ns).catch(() => {});
}

/** Removes namespaces and bridges left by runs whose process is gone (a crash, a killed test runner). */
export async function sweepLeftovers(): Promise<void> {
  for (const { name } of await ipJson<{ name: string }>('netns', 'list')) {
    const owner = ownerOf(name);
    if (owner !== null && !alive(owner)) await deleteNamespace(name);
  }
  for (const l of await ipJson<{ ifname: string; ifalias?: string }>('link', 'show')) {
    const owner = ownerOf(l.ifalias);
    if (owner !== null && !alive(owner)) await ip('link', 'del', l.ifname).catch(() => {});
  }
  for (const name of await readdir(tmpdir())) {
    const owner = ownerOf(name);
    if (owner !== null && !alive(owner)) await removeRunDir(join(tmpdir(), name));
  }
}

/** A /24 in 10.77.0.0/16 that no interface of this machine has an address in. */
async function freeSubnet(): Promise<string> {
  const used = new Set<string>();
  for (const l of await ipJson<{ addr_info?: Array<{ local: string }> }>('-4', 'addr', 'show')) {
    for (const a of l.addr_info ?? []) used.add(a.local.split('.').slice(0, 3).join('.'));
  }
  const start = randomBytes(1)[0]!;
  for (let i = 0; i < 256; i++) {
    const net = `10.77.${(start + i) % 256}`;
    if (!used.has(net)) return net;
  }
  throw new Error('no free /24 in 10.77.0.0/16');
}

async function addHost(ctx: { id: string; owner: string; net: string; bridge: string }, i: number): Promise<NetHost> {
  const host: NetHost = { ns: `${ctx.owner}-${i}`, ip: `${ctx.net}.${10 + i}`, link: `nsv${ctx.id}${i}` };
  const peer = `nsp${ctx.id}${i}`;
  await ip('netns', 'add', host.ns);
  await ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', peer);
  await ip('link', 'set', host.link, 'alias', ctx.owner);
  await ip('link', 'set', host.link, 'master', ctx.bridge, 'up');
  await ip('link', 'set', peer, 'netns', host.ns);
  await ip('-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', peer);
  await ip('-n', host.ns, 'link', 'set', peer, 'up');
  await ip('-n', host.ns, 'link', 'set', 'lo', 'up');
  return host;
}

export async function createNetwork(opts: { hosts: number }): Promise<Network> {
  await sweepLeftovers();
  const id = randomBytes(3).toString('hex');
  const owner = `${TAG}-${process.pid}-${id}`;
  const net = await freeSubnet();
  const bridge = `nsb${id}`;
  const bridgeIp = `${net}.1`;
  const dir = join(tmpdir(), owner);
  await mkdir(dir);
  const hosts: NetHost[] = [];
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    // A namespace goes (and its veth pair with it) once nothing runs in it any more.
    for (const h of hosts) await deleteNamespace(h.ns);
    for (const h of hosts) await ip('link', 'del', h.link).catch(() => {});
    await ip('link', 'del', bridge).catch(() => {});
    await removeRunDir(dir);
  };
  try {
    await ip('link', 'add', bridge, 'type', 'bridge', 'forward_delay', '0');
    await ip('link', 'set', bridge, 'alias', owner);
    await ip('addr', 'add', `${bridgeIp}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (let i = 0; i < opts.hosts; i++) hosts.push(await addHost({ id, owner, net, bridge }, i));
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    bridgeIp,
    dir,
    hosts,
    cut: async (h) => void (await ip('link', 'set', h.link, 'down')),
    restore: async (h) => void (await ip('link', 'set', h.link, 'up')),
    spawnIn: (h, command, args, o) => spawn('ip', ['netns', 'exec', h.ns, command, ...args], o),
    async adopt(pid) {
      const program = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0];
      await appendFile(join(dir, 'pids'), `${pid} ${program}\n`);
    },
    destroy,
  };
}

/** Why this machine cannot run the suite, or null when it can (Linux, root, `ip`, redis-server, namespaces allowed). */
export async function whyUnsupported(): Promise<string | null> {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and veth pairs)';
  try {
    await run('ip', ['-V']);
  } catch {
    return 'needs `ip` from iproute2 (apt-get install iproute2)';
  }
  try {
    await run('redis-server', ['--version']);
  } catch {
    return 'needs redis-server on PATH (apt-get install redis-server)';
  }
  const probe = `${TAG}-${process.pid}-probe`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return `cannot create a network namespace here: ${(err as Error).message}`;
  }
  await ip('netns', 'del', probe).catch(() => {});
  return null;
}
