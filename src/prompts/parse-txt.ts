import type { LineEvent } from './lines.js';
import type { ParseResult, RawRow } from './row-schema.js';

/**
 * `.txt`: one prompt per line. Blank lines and `#` comments are skipped; the whole trimmed
 * line is the prompt, so a comma-separated keyword list stays one prompt.
 */
export async function* txtRows(events: AsyncIterable<LineEvent>): AsyncGenerator<ParseResult> {
  for await (const ev of events) {
    if ('problem' in ev) {
      yield { rows: [], problems: [ev.problem] };
      return;
    }
    const rows: RawRow[] = [];
    for (const { n, text } of ev.lines) {
      const prompt = text.trim();
      if (prompt === '' || prompt.startsWith('#')) continue;
      rows.push({ line: n, fields: { prompt } });
    }
    yield { rows, problems: [] };
  }
}
