/**
 * One way to keep Lua: every script nightshift runs is a `LuaScript` loaded with `loadScript`, which
 * uses ioredis `defineCommand` (EVALSHA, falling back to EVAL after a NOSCRIPT, e.g. once Redis
 * restarted). Names are `ns` + PascalCase. Each script's definition opens with a comment saying its
 * KEYS, ARGV and result. Code several scripts share is a Lua function here, prepended by the loader
 * to the scripts that list it in `uses`.
 */
import type { Redis } from 'ioredis';

export type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** Lua functions scripts may use. */
const INCLUDES = {
  /**
   * nowMs(clock): the caller's clock in epoch ms when it sent one (tests inject a clock), else Redis
   * TIME, one clock for every machine, so skewed local clocks cannot disagree about the window.
   */
  nowMs: `
local function nowMs(clock)
  local n = tonumber(clock)
  if n then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`,
} as const;

export type LuaInclude = keyof typeof INCLUDES;

export interface LuaScript {
  /** `ns` + PascalCase, unique across nightshift: it becomes a method of the connection. */
  name: string;
  /** How many of the arguments are keys; null: it varies, and the first argument says how many. */
  numberOfKeys: number | null;
  lua: string;
  uses?: readonly LuaInclude[];
}

/** A Lua script as a function of (...KEYS, ...ARGV) on this connection. */
export function loadScript(redis: Redis, s: LuaScript): ScriptFn {
  if (!/^ns[A-Z][A-Za-z0-9]*$/.test(s.name)) throw new Error(`script name ${s.name} must be ns + PascalCase`);
  const lua = [...(s.uses ?? []).map((u) => INCLUDES[u]), s.lua].join('\n');
  redis.defineCommand(s.name, s.numberOfKeys === null ? { lua } : { numberOfKeys: s.numberOfKeys, lua });
  const fn = (redis as unknown as Record<string, ScriptFn | undefined>)[s.name];
  if (!fn) throw new Error(`ioredis did not define ${s.name}`);
  return fn.bind(redis);
}
