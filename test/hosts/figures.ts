/**
 * The figures a many-host run prints: one row per batch (and free-form notes), appended to a file
 * by the test files and printed together once the run is over.
 */
import { appendFile, readFile } from 'node:fs/promises';

export interface FigureRow {
  run: string;
  jobs: number;
  images: number;
  /** Bills beyond the first per job. */
  duplicates: number;
  rateLimited: number;
  seconds: number;
  note?: string;
}

type Entry = { row: FigureRow } | { note: string };

export async function addFigure(file: string, row: FigureRow): Promise<void> {
  console.log(`[hosts] ${formatRow(row)}`);
  await appendFile(file, `${JSON.stringify({ row } satisfies Entry)}\n`);
}

export async function addNote(file: string, note: string): Promise<void> {
  console.log(`[hosts] ${note}`);
  await appendFile(file, `${JSON.stringify({ note } satisfies Entry)}\n`);
}

export async function readFigures(file: string): Promise<Entry[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Entry);
}

export function formatFigures(entries: Entry[]): string {
  if (entries.length === 0) return '[hosts] no batch finished';
  const rows = entries.flatMap((e) => ('row' in e ? [`  ${formatRow(e.row)}`] : []));
  const notes = entries.flatMap((e) => ('note' in e ? [`  ${e.note}`] : []));
  return ['[hosts] figures', ...rows, ...(notes.length ? ['[hosts] notes', ...notes] : [])].join('\n');
}

function formatRow(r: FigureRow): string {
  const base =
    `${r.run}: ${r.jobs} jobs, ${r.images} images, ${r.duplicates} duplicates billed, ` +
    `${r.rateLimited} × 429, ${r.seconds.toFixed(1)} s`;
  return r.note ? `${base} (${r.note})` : base;
}
