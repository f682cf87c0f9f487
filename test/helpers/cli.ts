import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/nightshift.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from the start to the exit (before the pipes drained). */
  ms: number;
}

/** Env for a child nightshift: its own prefix and queue, never the developer's key or host. */
export function cliEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    'STABILITY_API_KEY',
    'STABILITY_API_HOST',
    'API_HOST',
    'NIGHTSHIFT_QUEUE',
    'NIGHTSHIFT_OUT',
    'REDIS_URL',
    'NIGHTSHIFT_PREFIX',
  ])
    delete env[k];
  return { ...env, NIGHTSHIFT_PROGRESS_INTERVAL: '1000', ...extra };
}

export interface CliStart {
  /** Working directory; the repository by default. */
  cwd?: string;
  /** Whether stdout is kept (pino at info writes a line per job); it is by default. */
  stdout?: 'pipe' | 'ignore';
  /** A command the CLI runs under, with its own arguments (GNU time, say). */
  wrapper?: readonly string[];
}

/** `node bin/nightshift.js args` as a child process; `result` settles once it exited. */
export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: CliStart = {},
): ChildProcess & { result: Promise<CliResult> } {
  const [cmd, ...pre] = [...(opts.wrapper ?? []), process.execPath];
  const startedAt = Date.now();
  const child = spawn(cmd!, [...pre, BIN, ...args], {
    env,
    cwd: opts.cwd ?? ROOT,
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
  });
  return Object.assign(child, { result: collect(child, startedAt) });
}

/** Gathers a child's output; resolves at its exit, once the pipes have drained. */
export function collect(child: ChildProcess, startedAt = Date.now()): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise<CliResult>((res) => {
    child.once('exit', (code, signal) => {
      const ms = Date.now() - startedAt;
      setTimeout(() => res({ code, signal, stdout, stderr, ms }), 20);
    });
  });
}

export async function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  const child = startCli(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await child.result;
  } finally {
    clearTimeout(timer);
  }
}
