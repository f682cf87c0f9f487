import type { Redis } from 'ioredis';

export type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** A Lua script as a function; defineCommand runs EVALSHA and falls back to EVAL after a NOSCRIPT (e.g. a Redis restart). */
export function script(redis: Redis, name: string, numberOfKeys: number, lua: string): ScriptFn {
  redis.defineCommand(name, { numberOfKeys, lua });
  const fn = (redis as unknown as Record<string, ScriptFn | undefined>)[name];
  if (!fn) throw new Error(`ioredis did not define ${name}`);
  return fn.bind(redis);
}
