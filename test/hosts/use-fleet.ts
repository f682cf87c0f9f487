/**
 * Per test file: the network of namespaces and the Redis on its bridge, shared by the file's tests;
 * per test: the batch runs it started, closed after it (workers killed, keys and folders removed),
 * and every link up again. All of it is torn down when the file ends, failed or not.
 */
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import { startBatchRun, type BatchRun, type BatchRunOptions, type Fleet } from './batch-run.js';
import { addFigure, addNote, type FigureRow } from './figures.js';
import { startBridgeRedis } from './fleet.js';
import { createNetwork } from './netns.js';

export const HOSTS = 3;
export const WORKERS_PER_HOST = 2;

/** `{ 'lock-duration': 2 }` → `['--lock-duration', '2']`. */
export const flags = (o: Record<string, string | number>): string[] =>
  Object.entries(o).flatMap(([k, v]) => [`--${k}`, String(v)]);

export function useFleet() {
  let fleet: Fleet | undefined;
  const runs: BatchRun[] = [];
  const figuresFile = inject('hostsFigures');

  beforeAll(async () => {
    const net = await createNetwork({ hosts: HOSTS });
    try {
      fleet = { net, redis: await startBridgeRedis(net) };
    } catch (err) {
      await net.destroy();
      throw err;
    }
  });
  afterEach(async () => {
    for (const h of fleet?.net.hosts ?? []) await fleet!.net.restore(h).catch(() => {});
    for (const r of runs.splice(0)) await r.close();
  });
  afterAll(async () => {
    await fleet?.redis.stop();
    await fleet?.net.destroy();
  });

  const get = () => {
    if (!fleet) throw new Error('useFleet: only inside a test');
    return fleet;
  };
  return {
    get net() {
      return get().net;
    },
    get redis() {
      return get().redis;
    },
    async start(o: BatchRunOptions): Promise<BatchRun> {
      const run = await startBatchRun(get(), o);
      runs.push(run);
      return run;
    },
    figure: (row: FigureRow) => addFigure(figuresFile, row),
    note: (text: string) => addNote(figuresFile, text),
  };
}
