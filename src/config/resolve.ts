import { SETTINGS, type SettingDef, type SettingGetter, type SettingKey, type SettingValue } from './settings.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** `--rate <count/seconds>` → `--rate`. */
export function flagName(key: SettingKey): string | undefined {
  const flag = (SETTINGS[key] as SettingDef<unknown>).flag;
  return flag?.split(/\s+/)[0];
}

/** The property commander stores a flag under: `--cfg-scale` → `cfgScale`. */
export function attributeOf(key: SettingKey): string | undefined {
  return flagName(key)
    ?.replace(/^--/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Reads settings for one command: the flag if given, else the first environment variable set (an
 * empty variable counts as unset), else the default. Each value is parsed once, on first use, so
 * a bad value is reported only by the commands that take it.
 */
export function settingsFrom(flags: Readonly<Record<string, unknown>>, env: Env): SettingGetter {
  const cache = new Map<SettingKey, unknown>();
  const get: SettingGetter = <K extends SettingKey>(key: K): SettingValue<K> => {
    if (cache.has(key)) return cache.get(key) as SettingValue<K>;
    const value = resolveOne(key, flags, env, get);
    cache.set(key, value);
    return value as SettingValue<K>;
  };
  return get;
}

/** Where a setting's value comes from: `--rate`, `env NIGHTSHIFT_RATE` or `default`. */
export function sourceOf(key: SettingKey, flags: Readonly<Record<string, unknown>>, env: Env): string {
  const s = SETTINGS[key] as SettingDef<unknown>;
  const attr = attributeOf(key);
  const given = attr === undefined ? undefined : flags[attr];
  if (given !== undefined && given !== false) return flagName(key)!;
  const name = (s.env ?? []).find((n) => env[n] !== undefined && env[n] !== '');
  return name ? `env ${name}` : 'default';
}

function resolveOne(key: SettingKey, flags: Readonly<Record<string, unknown>>, env: Env, get: SettingGetter): unknown {
  const s = SETTINGS[key] as SettingDef<unknown>;
  const attr = attributeOf(key);
  const given = attr === undefined ? undefined : flags[attr];
  if (given !== undefined && given !== false) {
    return s.parse(given === true ? 'true' : String(given), flagName(key)!);
  }
  for (const name of s.env ?? []) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') return s.parse(raw, name);
  }
  return typeof s.default === 'function'
    ? (s.default as (g: (k: string) => unknown) => unknown)((k) => get(k as SettingKey))
    : s.default;
}

/** How --help describes a setting: its text, its environment variable, its default. */
export function helpOf(key: SettingKey): string {
  const s = SETTINGS[key] as SettingDef<unknown>;
  const extra: string[] = [];
  if (s.env?.length) extra.push(`env ${s.env.join(', else ')}`);
  const shown = s.defaultText ?? (typeof s.default === 'function' || s.isSwitch ? undefined : s.default);
  if (shown !== undefined && shown !== '') extra.push(`default ${String(shown)}`);
  return extra.length ? `${s.help} (${extra.join('; ')})` : s.help;
}
