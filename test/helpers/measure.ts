/** A nightshift child process with its wall time and peak memory (RSS high-water mark). */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli, type CliResult } from './cli.js';

export interface Measured extends CliResult {
  seconds: number;
  /** Peak resident set size of the child, in MiB. */
  peakMiB: number;
}

const TIME = '/usr/bin/time';

/**
 * Runs `nightshift args` and measures it: with GNU time when it is there (the kernel's own peak
 * RSS of the child, from wait4), else by sampling the child's VmHWM in /proc every 10 ms.
 */
export async function runMeasured(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Measured> {
  const report = join(env.TMPDIR ?? '/tmp', `nightshift-time-${process.pid}-${Date.now()}.txt`);
  const useTime = existsSync(TIME);
  const child = startCli(args, env, { wrapper: useTime ? [TIME, '-f', '%e %M', '-o', report] : [] });
  let sampledKiB = 0;
  const sampler = useTime
    ? null
    : setInterval(() => {
        void readFile(`/proc/${child.pid}/status`, 'utf8')
          .then((s) => (sampledKiB = Math.max(sampledKiB, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))))
          .catch(() => {});
      }, 10);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const result = await child.result;
  clearTimeout(timer);
  if (sampler) clearInterval(sampler);
  const wall = result.ms / 1000;
  if (!useTime) return { ...result, seconds: wall, peakMiB: sampledKiB / 1024 };
  // GNU time exits with the child's status and writes its figures last (after any "exited with" line).
  const [secs, kib] = (await readFile(report, 'utf8').catch(() => '')).trim().split('\n').at(-1)!.split(' ');
  await rm(report, { force: true });
  return {
    ...result,
    seconds: Number(secs) || wall,
    peakMiB: Number(kib ?? 0) / 1024,
  };
}
