import type { LineEvent } from './lines.js';
import type { PromptProblem } from '../errors.js';
import type { ParseResult, RawRow } from './row-schema.js';

const BARE_CR =
  'holds a carriage return without a line feed (old Mac line endings?); save the file with LF or CRLF line endings';

/**
 * `.txt`: one prompt per line. Blank lines and `#` comments are skipped; the whole trimmed
 * line is the prompt, so a comma-separated keyword list stays one prompt.
 */
export async function* txtRows(file: string, events: AsyncIterable<LineEvent>): AsyncGenerator<ParseResult> {
  for await (const ev of events) {
    if ('problem' in ev) {
      yield { rows: [], problems: [ev.problem] };
      return;
    }
    const rows: RawRow[] = [];
    const problems: PromptProblem[] = [];
    for (const { n, text } of ev.lines) {
      const prompt = text.trim();
      if (prompt === '' || prompt.startsWith('#')) continue;
      // A carriage return alone ends lines in old Mac files: the "one line" is many prompts glued.
      if (prompt.includes('\r')) {
        problems.push({ file, line: n, field: 'prompt', message: BARE_CR });
        continue;
      }
      rows.push({ line: n, fields: { prompt } });
    }
    yield { rows, problems };
  }
}
