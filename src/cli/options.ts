import { Option, type Command } from 'commander';
import { flagName, helpOf } from '../config/resolve.js';
import {
  COMMON_SETTINGS,
  GENERATION_SETTINGS,
  SETTINGS,
  WORKER_SETTINGS,
  type SettingDef,
  type SettingKey,
} from '../config/settings.js';

/**
 * Flags come from the settings table, with no command-line defaults: a default filled in by the
 * parser would always win over the environment. Values are read and checked by the config.
 */
export function withSettings(cmd: Command, keys: readonly SettingKey[]): Command {
  const taken = takenBy.get(cmd) ?? [];
  takenBy.set(cmd, taken);
  for (const k of keys) if (!taken.includes(k)) taken.push(k);
  const have = new Set(cmd.options.map((o) => o.long));
  for (const key of keys) {
    const s = SETTINGS[key] as SettingDef<unknown>;
    if (!s.flag || have.has(flagName(key))) continue;
    const opt = new Option(s.flag, helpOf(key));
    if (s.hidden) opt.hideHelp();
    cmd.addOption(opt);
    have.add(flagName(key));
  }
  return cmd;
}

const takenBy = new WeakMap<Command, SettingKey[]>();

/** The settings a command declared, plus those only the environment sets (they apply everywhere). */
export function settingsTakenBy(cmd: Command): SettingKey[] {
  const envOnly = (Object.keys(SETTINGS) as SettingKey[]).filter((k) => !(SETTINGS[k] as SettingDef<unknown>).flag);
  return [...(takenBy.get(cmd) ?? []), ...envOnly];
}

/** Options every command takes. */
export function common(cmd: Command): Command {
  return withSettings(cmd, COMMON_SETTINGS);
}

/** `enqueue`/`run`: the batch and the generation defaults for every line. */
export function generation(cmd: Command): Command {
  return withSettings(cmd, GENERATION_SETTINGS);
}

/** `work`/`run`: the worker's settings. */
export function worker(cmd: Command): Command {
  return withSettings(cmd, WORKER_SETTINGS);
}
