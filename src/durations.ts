/**
 * Durations as people read them, everywhere nightshift prints one (status, the progress bar, the
 * gallery, run windows, estimates).
 *
 * - `exact`: `42 s`, `2 min 5 s`, `1 h 2 min`
 * - `rough`: `42 s`, `2 min`, `3.2 h` — for estimates, where seconds would be false precision
 *
 * Null, negative or non-finite: `—`.
 */
export function formatDuration(ms: number | null, style: 'exact' | 'rough' = 'exact'): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '—';
  // A moment is "1 s", not "0 s": something is left.
  const s = ms > 0 && ms < 1000 ? 1 : Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (style === 'rough') return s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min ${s % 60} s`;
}
