import path from 'node:path';
import type { ManifestRecord } from './record.js';
import { writeFileAtomic } from './atomic.js';
import { GALLERY_CSS, GALLERY_JS, PAGE_SIZE } from './gallery-assets.js';
import { formatDuration } from '../durations.js';
import { escapeHtml, jsonForScript } from './html.js';
import { GALLERY_FILE } from './paths.js';
import { compareRecords } from './sidecar.js';

/**
 * `<batch>/index.html`: one self-contained static page. The first page of cards is
 * plain HTML (readable without JS); every card is also in a JSON block that the inline JS
 * pages (PAGE_SIZE at a time) and filters, so 10,000 images stay responsive.
 */

export interface GalleryTotals {
  batch: string;
  images: number;
  credits: number;
  durationMs: number | null;
  generatedAt: string;
  /** Image file → thumbnail file (both relative to the batch); an image without one gets a "no preview" tile. */
  thumbs?: ReadonlyMap<string, string>;
}

/** What the JS needs per card; prompts and messages cut so the page stays small. */
interface CardData {
  id: string;
  i: number;
  p: string;
  s: number;
  m: string;
  st: ManifestRecord['status'];
  f: string | null;
  /** Thumbnail, when there is one. */
  t: string | null;
  e: string | null;
  em: string | null;
}

const PROMPT_MAX = 400;
const MESSAGE_MAX = 300;

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function toCard(r: ManifestRecord, thumbs: ReadonlyMap<string, string> | undefined): CardData {
  return {
    id: r.id,
    i: r.index,
    p: cut(r.prompt, PROMPT_MAX),
    s: r.seed,
    m: r.model,
    st: r.status,
    f: r.file,
    t: r.file !== null ? (thumbs?.get(r.file) ?? null) : null,
    e: r.error?.class ?? null,
    em: r.error ? cut(r.error.message, MESSAGE_MAX) : null,
  };
}

/** Same checks as the page's JS: only a plain file directly inside images/ becomes a URL. */
function safeSrc(file: string | null): string | null {
  return file !== null && /^images\/[A-Za-z0-9._-]+$/.test(file) ? file : null;
}

function safeThumb(file: string | null): string | null {
  return file !== null && /^thumbs\/[A-Za-z0-9._-]+\.webp$/.test(file) ? file : null;
}

/** The static twin of the JS `card()` (same markup, so paging looks the same). */
function renderCard(c: CardData): string {
  const src = safeSrc(c.f);
  const thumb = safeThumb(c.t);
  // Without a thumbnail the page shows a tile linking to the image, never the full-size image itself.
  const media =
    src && thumb
      ? `<a href="${escapeHtml(src)}"><img loading="lazy" decoding="async" src="${escapeHtml(thumb)}" alt="${escapeHtml(c.p)}"></a>`
      : src
        ? `<a class="nopreview" href="${escapeHtml(src)}">no preview</a>`
        : `<div class="noimg">${escapeHtml(c.e ?? 'no image')}</div>`;
  const err = c.em ? `<p class="err">${escapeHtml(c.e ? `${c.e}: ${c.em}` : c.em)}</p>` : '';
  return (
    `<figure class="card ${escapeHtml(c.st)}">${media}<figcaption>` +
    `<p class="prompt" title="${escapeHtml(c.p)}">${escapeHtml(c.p)}</p>` +
    `<p class="meta"><span class="badge ${escapeHtml(c.st)}">${escapeHtml(c.st)}</span>` +
    `<span>#${escapeHtml(c.i)} · seed ${escapeHtml(c.s)} · ${escapeHtml(c.m)}</span></p>${err}</figcaption></figure>`
  );
}

/** Failures grouped by error class, then by message (a thousand identical 500s are one line). */
function renderFailures(records: ManifestRecord[]): string {
  const byClass = new Map<string, Map<string, number[]>>();
  for (const r of records) {
    if (r.status !== 'failed') continue;
    const cls = r.error?.class ?? 'unknown';
    const msg = r.error
      ? `${r.error.status !== null ? `${r.error.status} ` : ''}${r.error.name}: ${r.error.message}`
      : 'no error recorded';
    const messages = byClass.get(cls) ?? new Map<string, number[]>();
    byClass.set(cls, messages);
    const list = messages.get(msg) ?? [];
    messages.set(msg, list);
    list.push(r.index);
  }
  if (byClass.size === 0) return '<p class="empty">No failures.</p>';
  const classes = [...byClass.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  return classes
    .map(([cls, messages]) => {
      const total = [...messages.values()].reduce((n, l) => n + l.length, 0);
      const rows = [...messages.entries()]
        .sort((a, b) => b[1].length - a[1].length)
        .slice(0, 50)
        .map(([msg, idx]) => {
          const shown = idx
            .slice(0, 20)
            .map((i) => `#${i}`)
            .join(', ');
          const rest = idx.length > 20 ? ` and ${idx.length - 20} more` : '';
          return `<li><b>${idx.length}×</b> ${escapeHtml(cut(msg, 1000))} <small>(${escapeHtml(shown + rest)})</small></li>`;
        })
        .join('\n');
      const hidden =
        messages.size > 50
          ? `<li><small>${messages.size - 50} more distinct messages in manifest.jsonl</small></li>`
          : '';
      return `<details open><summary>${escapeHtml(cls)} (${total})</summary><ul>\n${rows}${hidden}</ul></details>`;
    })
    .join('\n');
}

/** The whole page as a string (exported for tests and for callers that serve it). */
export function renderGallery(records: ManifestRecord[], totals: GalleryTotals): string {
  const sorted = [...records].sort(compareRecords);
  const cards = sorted.map((r) => toCard(r, totals.thumbs));
  const count = (s: ManifestRecord['status']) => sorted.filter((r) => r.status === s).length;
  const counts = { succeeded: count('succeeded'), filtered: count('filtered'), failed: count('failed') };
  const credits = Math.round(totals.credits * 1e6) / 1e6;
  const firstPage = cards.slice(0, PAGE_SIZE).map(renderCard).join('\n');
  const title = `nightshift — ${totals.batch}`;
  const button = (st: string, label: string, n: number) =>
    `<button type="button" data-status="${escapeHtml(st)}" aria-pressed="${st === 'all'}">${escapeHtml(label)} (${n})</button>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${GALLERY_CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<ul class="totals">
<li>images <b>${totals.images}</b></li>
<li>jobs <b>${sorted.length}</b></li>
<li>succeeded <b>${counts.succeeded}</b></li>
<li>filtered <b>${counts.filtered}</b></li>
<li>failed <b>${counts.failed}</b></li>
<li>credits <b>${escapeHtml(credits)}</b></li>
<li>duration <b>${escapeHtml(formatDuration(totals.durationMs))}</b></li>
<li>generated <b>${escapeHtml(totals.generatedAt)}</b></li>
</ul>
<div class="controls" hidden>
${button('all', 'all', sorted.length)}
${button('succeeded', 'succeeded', counts.succeeded)}
${button('filtered', 'filtered', counts.filtered)}
${button('failed', 'failed', counts.failed)}
<input id="search" type="search" placeholder="filter by prompt or seed" aria-label="filter by prompt or seed">
<span id="shown"></span>
</div>
<main id="grid">
${firstPage}
</main>
<noscript><p class="empty">Showing the first ${Math.min(PAGE_SIZE, cards.length)} of ${cards.length} jobs; enable JavaScript to page and filter, or see manifest.jsonl.</p></noscript>
<button type="button" id="more" hidden>show more</button>
<section class="failures">
<h2>Failures (${counts.failed})</h2>
${renderFailures(sorted)}
</section>
<script type="application/json" id="ns-data">${jsonForScript({ batch: totals.batch, cards })}</script>
<script>${GALLERY_JS}</script>
</body>
</html>
`;
}

/** Writes `<batchDir>/index.html` atomically; returns its path. */
export async function writeGallery(
  batchDir: string,
  records: ManifestRecord[],
  totals: GalleryTotals,
): Promise<string> {
  const file = path.join(batchDir, GALLERY_FILE);
  await writeFileAtomic(file, renderGallery(records, totals));
  return file;
}
