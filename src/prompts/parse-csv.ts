import { parse, type Parser } from 'csv-parse';
import type { PromptProblem } from '../errors.js';
import type { LineEvent, TextLine } from './lines.js';
import { NUMERIC_KEYS, isRowKey, unknownKeyProblem, type ParseResult, type RawRow } from './row-schema.js';

interface CsvRecord {
  record: string[];
  raw: string;
  info: { lines: number };
}

/** Lines written to csv-parse at once. */
const CSV_SLICE = 1000;

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * The line a record starts on. csv-parse reports the line it ends on; its raw text also
 * carries any skipped blank lines before it and the trailing newline.
 */
function startLine(rec: CsvRecord): number {
  const body = rec.raw.replace(/^\n+/, '').replace(/\n$/, '');
  return rec.info.lines - (body.match(/\n/g)?.length ?? 0);
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

function toRow(file: string, rec: CsvRecord, columns: Array<string | null>, problems: PromptProblem[]): RawRow {
  const line = startLine(rec);
  const fields: Record<string, unknown> = {};
  columns.forEach((key, i) => {
    const value = (rec.record[i] ?? '').trim();
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
 * Where a record that failed to parse begins: the first non-blank line after the last good record.
 * Records end in the slice being fed or the one before (csv-parse holds back a slice's last bytes),
 * so those two slices' lines are all it needs.
 */
class FailureLine {
  private lastEnd = 0;
  private first: number | null = null;
  private recent: TextLine[][] = [];

  fed(lines: TextLine[]): void {
    this.recent = [this.recent.at(-1) ?? [], lines];
    this.look();
  }

  recordEnded(line: number): void {
    this.lastEnd = Math.max(this.lastEnd, line);
    if (this.first !== null && this.first <= this.lastEnd) this.first = null;
  }

  private look(): void {
    if (this.first !== null) return;
    for (const chunk of this.recent)
      for (const l of chunk)
        if (l.n > this.lastEnd && l.text.trim() !== '') {
          this.first = l.n;
          return;
        }
  }

  line(): number {
    this.look();
    return this.first ?? this.lastEnd + 1;
  }
}

function csvProblem(file: string, line: number, err: unknown): PromptProblem {
  const code = (err as { code?: string }).code;
  const message =
    code === 'CSV_QUOTE_NOT_CLOSED'
      ? 'a quoted field that starts in this record is never closed'
      : `cannot parse CSV: ${err instanceof Error ? err.message : String(err)}`;
  return { file, line, field: 'csv', message };
}

/** Turns csv-parse's records into rows: the first is the header, then one row per record. */
class CsvRows {
  columns: Array<string | null> | null = null;
  records = 0;
  rows: RawRow[] = [];
  problems: PromptProblem[] = [];
  /** Problems handed out by flush so far. */
  private flushed = 0;
  constructor(private readonly file: string) {}

  /** False once the header says there is nothing to read (no prompt column). */
  take(rec: CsvRecord): boolean {
    if (this.columns === null) {
      this.columns = header(this.file, rec.record, this.problems);
      // Without a prompt column every row would repeat "prompt: is required".
      return this.columns.includes('prompt');
    }
    this.records++;
    // A line of only commas or spaces is as blank as an empty line.
    if (rec.record.every((c) => c.trim() === '')) return true;
    if (rec.record.length !== this.columns.length) {
      const message = `record has ${rec.record.length} fields but the header has ${this.columns.length}`;
      this.problems.push({ file: this.file, line: startLine(rec), field: 'csv', message });
      return true;
    }
    this.rows.push(toRow(this.file, rec, this.columns, this.problems));
    return true;
  }

  /** Whether any problem was found in the file so far. */
  get anyProblem(): boolean {
    return this.flushed + this.problems.length > 0;
  }

  flush(): ParseResult {
    const out = { rows: this.rows, problems: this.problems };
    this.flushed += this.problems.length;
    this.rows = [];
    this.problems = [];
    return out;
  }
}

function newParser(): Parser {
  const parser = parse({
    info: true,
    raw: true,
    skip_empty_lines: true,
    // Field counts are checked per record, so one bad row does not hide the rest.
    relax_column_count: true,
  });
  parser.on('error', () => {}); // read back through `errored` and the iterator below
  return parser;
}

/** Reads what the parser has ready without waiting; false when the reading should stop. */
function drain(parser: Parser, rows: CsvRows, where: FailureLine): boolean {
  for (let rec = parser.read() as CsvRecord | null; rec !== null; rec = parser.read() as CsvRecord | null) {
    where.recordEnded(rec.info.lines);
    if (!rows.take(rec)) return false;
  }
  return true;
}

/**
 * `.csv`: a header row naming the columns, then one prompt per record, parsed as the lines arrive.
 * Quoted fields may hold commas and newlines; each row reports the line its record starts on.
 */
export async function* csvRows(file: string, events: AsyncIterable<LineEvent>): AsyncGenerator<ParseResult> {
  const parser = newParser();
  const rows = new CsvRows(file);
  const where = new FailureLine();
  let fileProblem: PromptProblem | null = null;
  try {
    for await (const ev of events) {
      if ('problem' in ev) {
        fileProblem = ev.problem;
        break;
      }
      // csv-parse parses what is written at once and its records wait in its buffer: a slice at a
      // time keeps that buffer small.
      for (let i = 0; i < ev.lines.length; i += CSV_SLICE) {
        const slice = ev.lines.slice(i, i + CSV_SLICE);
        where.fed(slice);
        parser.write(slice.map((l) => `${l.text}\n`).join(''));
        if (!drain(parser, rows, where)) return yield rows.flush();
        if (parser.errored) {
          rows.problems.push(csvProblem(file, where.line(), parser.errored));
          return yield rows.flush();
        }
        yield rows.flush();
      }
    }
    if (fileProblem !== null) {
      // The file itself is unusable: that is the one problem worth reading, not a quote cut short by it.
      return yield { rows: [], problems: [fileProblem] };
    }
    parser.end();
    try {
      for await (const rec of parser as AsyncIterable<CsvRecord>) {
        where.recordEnded(rec.info.lines);
        if (!rows.take(rec)) break;
      }
    } catch (err) {
      rows.problems.push(csvProblem(file, where.line(), err));
    }
    if (rows.columns !== null && rows.records === 0 && !rows.anyProblem) {
      rows.problems.push({ file, line: 0, field: 'file', message: 'file has a header row but no prompts' });
    }
    yield rows.flush();
  } finally {
    parser.destroy();
  }
}
