/** A nightshift child process with its wall time and peak memory (RSS high-water mark). */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, ROOT, type CliResult } from './cli.js';

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
  const cmd = useTime ? TIME : process.execPath;
  const argv = useTime ? ['-f', '%e %M', '-o', report, process.execPath, BIN, ...args] : [BIN, ...args];
  const started = process.hrtime.bigint();
  const child = spawn(cmd, argv, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let sampledKiB = 0;
  const sampler = useTime
    ? null
    : setInterval(() => {
        void readFile(`/proc/${child.pid}/status`, 'utf8')
          .then((s) => (sampledKiB = Math.max(sampledKiB, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))))
          .catch(() => {});
      }, 10);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('exit', (c, s) => setTimeout(() => res({ code: c, signal: s }), 20)),
  );
  clearTimeout(timer);
  if (sampler) clearInterval(sampler);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (!useTime) return { code, signal, stdout, stderr, seconds: wall, peakMiB: sampledKiB / 1024 };
  // GNU time exits with the child's status and writes its figures last (after any "exited with" line).
  const [secs, kib] = (await readFile(report, 'utf8').catch(() => '')).trim().split('\n').at(-1)!.split(' ');
  await rm(report, { force: true });
  return {
    code,
    signal,
    stdout,
    stderr,
    seconds: Number(secs) || wall,
    peakMiB: Number(kib ?? 0) / 1024,
  };
}
