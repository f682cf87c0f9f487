import { Command, CommanderError } from 'commander';
import { NightshiftError, PromptFileError } from '../errors.js';
import { debugEnabled } from '../config.js';
import { terminalSafe } from '../secrets.js';
import { enqueueCommand } from './commands/enqueue.js';
import { workCommand } from './commands/work.js';
import { runCommand } from './commands/run.js';
import { adminCommands } from './commands/admin.js';
import { mockApiCommand } from './commands/mock-api.js';
import { dashboardCommand } from './commands/dashboard.js';
import { configCommand } from './commands/config.js';
import { exportCommand } from './commands/export.js';

export function buildProgram(): Command {
  const program = new Command('nightshift')
    .description(
      'Generate images in bulk with the Stability AI API: prompt files in, images, a manifest and a gallery out.',
    )
    .version('0.1.0')
    .exitOverride()
    .showSuggestionAfterError();
  enqueueCommand(program);
  workCommand(program);
  runCommand(program);
  adminCommands(program);
  mockApiCommand(program);
  dashboardCommand(program);
  configCommand(program);
  exportCommand(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** Maps errors to exit codes : 2 usage/input, 3 environment, 4 stopped, 1 otherwise. */
export async function main(argv: string[]): Promise<void> {
  // Output piped into `head` (or any reader that stops early): the reader has what it wanted, and
  // the command goes on to its own end. Exiting here would cut a run short, its requests in flight.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  let code: number;
  try {
    await buildProgram().parseAsync(argv);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    code = exitCodeOf(err);
    if (!(err instanceof CommanderError)) {
      const msg = err instanceof PromptFileError ? err.message : err instanceof Error ? err.message : String(err);
      process.stderr.write(`nightshift: ${terminalSafe(msg)}\n`);
      if (!(err instanceof NightshiftError) && err instanceof Error && debugEnabled())
        process.stderr.write(`${err.stack}\n`);
    }
  }
  // Open sockets (ioredis, undici) must not keep a finished command alive.
  setTimeout(() => process.exit(code), 50).unref();
  process.exitCode = code;
  await new Promise((r) => setTimeout(r, 60));
  process.exit(code);
}

function exitCodeOf(err: unknown): number {
  if (err instanceof NightshiftError) return err.exitCode;
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
      return 0;
    return 2;
  }
  return 1;
}
