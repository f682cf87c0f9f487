/** The figures a many-host run prints: one row per batch, printed together at the end. */

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

export function createFigures() {
  const rows: FigureRow[] = [];
  return {
    add(row: FigureRow): void {
      rows.push(row);
      console.log(`[hosts] ${format(row)}`);
    },
    /** The table, or a line saying there is nothing to show. */
    table(): string {
      if (rows.length === 0) return '[hosts] no batch finished';
      return ['[hosts] figures', ...rows.map((r) => `  ${format(r)}`)].join('\n');
    },
  };
}

function format(r: FigureRow): string {
  const base =
    `${r.run}: ${r.jobs} jobs, ${r.images} images, ${r.duplicates} duplicates billed, ` +
    `${r.rateLimited} × 429, ${r.seconds.toFixed(1)} s`;
  return r.note ? `${base} (${r.note})` : base;
}
