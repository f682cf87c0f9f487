import type { Command } from 'commander';
import { describeSettings } from '../../config.js';
import { SETTINGS, type SettingKey } from '../../config/settings.js';
import { UsageError } from '../../errors.js';
import { settingsTakenBy } from '../options.js';

/**
 * `nightshift config [command] [flags…]`: the value each setting of a command would have and where
 * it comes from (flag, environment variable or default), without running the command. Secrets are
 * shown as set or not.
 */
export function configCommand(program: Command): void {
  program
    .command('config')
    .description('show the settings a command would use and where each comes from (flag, environment, default)')
    .argument('[command-and-flags...]', 'a command, then its flags as you would give them (default: every setting)')
    .option('--json', 'print one JSON object')
    .allowUnknownOption()
    .action((args: string[], o: Record<string, unknown>) => {
      const [name, ...rest] = args;
      const { keys, flags } = name === undefined ? allSettings() : commandSettings(program, name, rest);
      const rows = describeSettings(keys, flags);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(Object.fromEntries(rows.map((r) => [r.key, r])))}\n`);
        return;
      }
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) process.stdout.write(`${r.name.padEnd(width)}  ${r.shown}  (${r.source})\n`);
    });
}

function allSettings(): { keys: SettingKey[]; flags: Record<string, unknown> } {
  return { keys: Object.keys(SETTINGS) as SettingKey[], flags: {} };
}

function commandSettings(program: Command, name: string, rest: string[]) {
  const cmd = program.commands.find((c) => c.name() === name);
  if (!cmd || name === 'config') throw new UsageError(`config: no command named "${name}"`);
  const parsed = cmd.parseOptions(rest);
  if (parsed.unknown.length > 0) throw new UsageError(`config ${name}: unknown option ${parsed.unknown[0]}`);
  return { keys: settingsTakenBy(cmd), flags: cmd.opts() };
}
