import type { ParseResult, RawRow } from './row-schema.js';

/**
 * `.txt`: one prompt per line. Blank lines and `#` comments are skipped; the whole trimmed
 * line is the prompt, so a comma-separated keyword list stays one prompt.
 */
export function parseTxt(_file: string, text: string): ParseResult {
  const rows: RawRow[] = [];
  text.split('\n').forEach((raw, i) => {
    const prompt = raw.trim();
    if (prompt === '' || prompt.startsWith('#')) return;
    rows.push({ line: i + 1, fields: { prompt } });
  });
  return { rows, problems: [] };
}
