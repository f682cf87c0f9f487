/**
 * One batch across the hosts: its own queue, key prefix and output folder (on the shared
 * filesystem every namespace sees), its own fake API on the bridge, `work` processes in every
 * namespace, and `enqueue`/`status` run from the host side as a user would.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startMockApi, type MockApi, type MockApiOptions } from '../../src/mock-api/server.js';
import { cliEnv, runCli, type CliResult } from '../helpers/cli.js';
import { cleanupPrefix, randomPrefix } from '../helpers/redis.js';
import { tempDir } from '../helpers/temp.js';
import { sleep, until } from '../helpers/wait.js';
import { startHostWorker, type BridgeRedis, type HostWorker } from './fleet.js';
import type { NetHost, Network } from './netns.js';

const API_KEY = 'sk-hosts-test';
export const BATCH = 'b';

export interface Fleet {
  net: Network;
  redis: BridgeRedis;
}

export interface BatchRunOptions {
  /** Names the queue and the prompts, so runs never share jobs. */
  tag: string;
  jobs: number;
  mock: MockApiOptions;
  workersPerHost: number;
  /** `work` flags besides --queue and --out. */
  workerArgs: string[];
  /** The shared limit `enqueue`'s balance check counts against (the workers' --rate). */
  rate: string;
}

/** A manifest line, as far as these tests read it. */
export interface ManifestLine {
  id: string;
  status: string;
  file: string | null;
  prompt: string;
}

export interface BatchRun {
  mock: MockApi;
  workers: HostWorker[];
  prompts: Set<string>;
  batchDir: string;
  /** Adds the batch with `enqueue`; resolves with the time it started, once `enqueue` has exited. */
  enqueue(): Promise<number>;
  /** The last manifest line per job id, as readers of the manifest take it. */
  manifest(): Promise<Map<string, ManifestLine>>;
  /** Waits until `n` jobs have a manifest line. */
  waitForManifest(n: number, timeoutMs: number): Promise<void>;
  /** `status --json` for the batch, run from the host side. */
  status(): Promise<{ counts: Record<string, number>; batches: Record<string, Record<string, number>> }>;
  /** SIGTERM to every worker still running; their results. */
  stopAll(): Promise<CliResult[]>;
  workersOn(host: NetHost): HostWorker[];
  close(): Promise<void>;
}

async function readManifestLines(path: string): Promise<Map<string, ManifestLine>> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const byId = new Map<string, ManifestLine>();
  // Read while workers append: what follows the last newline may be a line still being written.
  for (const line of text.split('\n').slice(0, -1)) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as ManifestLine;
    byId.set(r.id, r);
  }
  return byId;
}

/** Image files in the batch's images folder (not temp files, not sidecars). */
export async function imagesOnDisk(batchDir: string): Promise<string[]> {
  const names = await readdir(join(batchDir, 'images')).catch(() => [] as string[]);
  return names.filter((f) => !f.startsWith('.') && /\.(png|jpe?g|webp)$/.test(f));
}

export async function startBatchRun(fleet: Fleet, o: BatchRunOptions): Promise<BatchRun> {
  const { net, redis } = fleet;
  const { dir: out, cleanup: removeOut } = await tempDir(`${o.tag}-`, net.dir);
  const prefix = randomPrefix();
  const queue = `hosts-${o.tag}`;
  const mock = await startMockApi({ ...o.mock, host: net.bridgeIp, port: 0 });
  const env = cliEnv({
    NIGHTSHIFT_PREFIX: prefix,
    REDIS_URL: redis.url,
    STABILITY_API_HOST: mock.url,
    STABILITY_API_KEY: API_KEY,
  });
  const promptList = Array.from({ length: o.jobs }, (_, i) => `${o.tag} prompt ${i}, a lighthouse over the bay`);
  const batchDir = join(out, BATCH);
  const workers: HostWorker[] = [];
  const common = ['--queue', queue, '--out', out];
  // The fake listens on the bridge, not on loopback: the key goes over plain http:// to another
  // address, which nightshift refuses unless told the network is ours.
  const apiFlags = ['--allow-insecure-api'];
  for (const host of net.hosts)
    for (let i = 0; i < o.workersPerHost; i++)
      workers.push(startHostWorker(net, host, { args: [...common, ...apiFlags, ...o.workerArgs], env }));
  // Workers start before the batch exists, so its time is the batch's and not node's start-up.
  await until('every worker started', () => workers.every((w) => w.started()), 120_000).catch((err) => {
    const dead = workers.filter((w) => w.child.exitCode !== null);
    throw new Error(`${(err as Error).message}; exited: ${dead.length}`);
  });
  const manifest = () => readManifestLines(join(batchDir, 'manifest.jsonl'));
  return {
    mock,
    workers,
    prompts: new Set(promptList),
    batchDir,
    async enqueue() {
      const file = join(out, 'prompts.txt');
      await writeFile(file, `${promptList.join('\n')}\n`);
      const t0 = Date.now();
      const r = await runCli(['enqueue', file, ...common, ...apiFlags, '--batch', BATCH, '--rate', o.rate], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`added ${o.jobs}`);
      return t0;
    },
    manifest,
    async waitForManifest(n, timeoutMs) {
      await until(`${n} manifest lines`, async () => (await manifest()).size >= n, timeoutMs);
    },
    async status() {
      const r = await runCli(['status', '--json', '--batch', BATCH, ...common], env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Awaited<ReturnType<BatchRun['status']>>;
    },
    stopAll: () => Promise.all(workers.map((w) => w.stop('SIGTERM'))),
    workersOn: (host) => workers.filter((w) => w.host === host),
    async close() {
      for (const w of workers) await w.stop('SIGKILL');
      await mock.close();
      await cleanupPrefix(redis.client, prefix);
      await removeOut();
    },
  };
}

/** Polls `status` until the batch has nothing pending (the manifest can be a moment ahead of it). */
export async function waitForStatusDone(run: BatchRun, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await run.status();
    if (s.batches[BATCH]?.pending === 0) return s;
    if (Date.now() > end) throw new Error(`batch not finished: ${JSON.stringify(s.batches[BATCH])}`);
    await sleep(500);
  }
}
