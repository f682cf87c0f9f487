import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/nightshift.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
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

export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd = ROOT,
): ChildProcess & { result: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const result = new Promise<CliResult>((res) => {
    child.on('exit', (code, signal) => {
      // Let the pipes drain.
      setTimeout(() => res({ code, signal, stdout, stderr }), 20);
    });
  });
  return Object.assign(child, { result });
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
