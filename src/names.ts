import { UsageError } from './errors.js';

/**
 * Names the user gives that become parts of Redis keys, job ids and folder names: batches, queues
 * and a prompt line's `id`. One rule for all, so none can name a path or break a key.
 */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NAME_RULE = "1–64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/**
 * The valid name nearest to `text` (a prompt file's base name, say): runs of other characters
 * become '-', what cannot start a name is dropped, and it is cut to length; null when nothing is left.
 */
export function nameFrom(text: string): string | null {
  const name = text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return NAME.test(name) ? name : null;
}

/** Throws a UsageError naming the flag (`--batch`, `--queue`) unless `value` is a valid name. */
export function checkName(value: string, flag: string, what: string): void {
  if (!NAME.test(value))
    throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a valid ${what} name (${NAME_RULE})`);
}
