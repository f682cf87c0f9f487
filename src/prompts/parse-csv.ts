import { parse } from 'csv-parse/sync';
import type { PromptProblem } from '../errors.js';
import { NUMERIC_KEYS, isRowKey, unknownKeyProblem, type ParseResult, type RawRow } from './row-schema.js';

interface CsvRecord {
  record: string[];
  raw: string;
  info: { lines: number };
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * The line a record starts on. csv-parse reports the line it ends on; its raw text also
 * carries any skipped blank lines before it and the trailing newline.
 */
function startLine(rec: CsvRecord): number {
  const body = rec.raw.replace(/^\n+/, '').replace(/\n$/, '');
  return rec.info.lines - (body.match(/\n/g)?.length ?? 0);
}

/** First non-blank line after `afterLine`: where a record that failed to parse begins. */
function nextContentLine(text: string, afterLine: number): number {
  const lines = text.split('\n');
  for (let i = afterLine; i < lines.length; i++) if (lines[i]?.trim() !== '') return i + 1;
  return afterLine + 1;
}

function header(file: string, cells: string[], problems: PromptProblem[]): Array<string | null> {
  const seen = new Set<string>();
  const columns = cells.map((cell, i) => {
    const name = cell.trim().toLowerCase();
    if (name === '') {
      problems.push({ file, line: 1, field: `column ${i + 1}`, message: 'header cell is empty; name the column' });
      return null;
    }
    if (!isRowKey(name)) {
      problems.push(unknownKeyProblem(file, 1, cell.trim(), 'column'));
      return null;
    }
    if (seen.has(name)) {
      problems.push({ file, line: 1, field: name, message: 'column appears twice in the header' });
      return null;
    }
    seen.add(name);
    return name;
  });
  if (!seen.has('prompt'))
    problems.push({ file, line: 1, field: 'prompt', message: 'the header has no prompt column' });
  return columns;
}

function toRow(
  file: string,
  line: number,
  columns: Array<string | null>,
  cells: string[],
  problems: PromptProblem[],
): RawRow {
  const fields: Record<string, unknown> = {};
  columns.forEach((key, i) => {
    const value = (cells[i] ?? '').trim();
    // An empty field means the column is unset for this row.
    if (key === null || value === '') return;
    if (!NUMERIC_KEYS.has(key)) {
      fields[key] = value;
    } else if (NUMBER.test(value)) {
      fields[key] = Number(value);
    } else {
      problems.push({ file, line, field: key, message: `must be a number (got ${JSON.stringify(value)})` });
    }
  });
  return { line, fields };
}

/**
 * `.csv`: a header row naming the columns, then one prompt per record. Quoted fields may hold
 * commas and newlines; each row reports the line its record starts on.
 */
export function parseCsv(file: string, text: string): ParseResult {
  const records: CsvRecord[] = [];
  const problems: PromptProblem[] = [];
  try {
    parse(text, {
      info: true,
      raw: true,
      skip_empty_lines: true,
      // Field counts are checked below, per record, so one bad row does not hide the rest.
      relax_column_count: true,
      // With info and raw on, each record arrives as {record, raw, info}; csv-parse's types miss that.
      on_record: (rec: unknown) => {
        records.push(rec as CsvRecord);
        return rec as string[];
      },
    });
  } catch (err) {
    const last = records.at(-1);
    const line = nextContentLine(text, last ? last.info.lines : 0);
    const code = (err as { code?: string }).code;
    const message =
      code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'a quoted field that starts in this record is never closed'
        : `cannot parse CSV: ${err instanceof Error ? err.message : String(err)}`;
    problems.push({ file, line, field: 'csv', message });
  }
  const [head, ...body] = records;
  if (head === undefined) return { rows: [], problems };
  const columns = header(file, head.record, problems);
  // Without a prompt column every row would repeat "prompt: is required".
  if (!columns.includes('prompt')) return { rows: [], problems };
  const rows: RawRow[] = [];
  for (const rec of body) {
    const line = startLine(rec);
    // A line of only commas or spaces is as blank as an empty line.
    if (rec.record.every((c) => c.trim() === '')) continue;
    if (rec.record.length !== columns.length) {
      problems.push({
        file,
        line,
        field: 'csv',
        message: `record has ${rec.record.length} fields but the header has ${columns.length}`,
      });
      continue;
    }
    rows.push(toRow(file, line, columns, rec.record, problems));
  }
  if (body.length === 0 && problems.length === 0) {
    problems.push({ file, line: 0, field: 'file', message: 'file has a header row but no prompts' });
  }
  return { rows, problems };
}
