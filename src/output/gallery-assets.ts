/**
 * The gallery's inline CSS and JS (no network: the page must work opened from the disk).
 * The JS pages and filters cards from the JSON data block with DOM APIs only
 * (textContent, properties), never innerHTML, so record text cannot become markup.
 */

export const PAGE_SIZE = 200;

export const GALLERY_CSS = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fafafa; --card: #fff; --muted: #6e6e73; --line: #ddd; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --bg: #161618; --card: #222225; --muted: #a1a1a6; --line: #3a3a3c; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; } /* else the display rules below would show hidden controls */
body { margin: 0; padding: 1rem 1.5rem 3rem; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
h1 { margin: 0 0 .5rem; font-size: 1.4rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.totals { display: flex; flex-wrap: wrap; gap: .4rem 1.5rem; margin: 0 0 1rem; padding: 0; list-style: none; color: var(--muted); }
.totals b { color: var(--fg); }
.controls { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; padding: .5rem 0; background: var(--bg); }
.controls button { font: inherit; padding: .25rem .7rem; border: 1px solid var(--line); border-radius: 999px; background: var(--card); color: var(--fg); cursor: pointer; }
.controls button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
.controls input { font: inherit; padding: .25rem .6rem; border: 1px solid var(--line); border-radius: 6px; min-width: 14rem; background: var(--card); color: var(--fg); }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 1rem; }
.card { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; display: flex; flex-direction: column; }
.card img, .card .noimg, .card .nopreview { display: block; width: 100%; aspect-ratio: 1; object-fit: cover; background: var(--line); }
.card .noimg, .card .nopreview { display: flex; align-items: center; justify-content: center; color: var(--muted); font-weight: 600; }
.card figcaption { padding: .5rem .6rem .6rem; }
.card .prompt { margin: 0 0 .3rem; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; }
.card .meta { margin: 0; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.card .err { margin: .3rem 0 0; color: #c0392b; font-size: 12px; overflow-wrap: anywhere; }
.badge { display: inline-block; margin-right: .4rem; padding: 0 .45rem; border-radius: 999px; font-size: 11px; font-weight: 600; color: #fff; background: #888; }
.badge.succeeded { background: #2e7d32; } .badge.filtered { background: #b7791f; } .badge.failed { background: #c0392b; }
#more { display: block; margin: 1.5rem auto; font: inherit; padding: .5rem 1.5rem; }
.failures details { margin: .4rem 0; } .failures summary { cursor: pointer; font-weight: 600; }
.failures li { margin: .2rem 0; overflow-wrap: anywhere; } .failures small { color: var(--muted); }
.empty { color: var(--muted); }
`;

/** Runs once on load; the first page of cards is already in the HTML. */
export const GALLERY_JS = `
(function () {
  'use strict';
  var PAGE = ${PAGE_SIZE};
  var data = JSON.parse(document.getElementById('ns-data').textContent);
  var cards = data.cards;
  var grid = document.getElementById('grid');
  var more = document.getElementById('more');
  var count = document.getElementById('shown');
  var search = document.getElementById('search');
  var status = 'all';
  var list = cards;
  var shown = Math.min(PAGE, cards.length);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // Only plain relative paths inside images/ become URLs: no javascript:, no ../.
  function safeSrc(f) {
    return typeof f === 'string' && /^images\\/[A-Za-z0-9._-]+$/.test(f) ? f : null;
  }
  function safeThumb(f) {
    return typeof f === 'string' && /^thumbs\\/[A-Za-z0-9._-]+\\.webp$/.test(f) ? f : null;
  }
  function card(c) {
    var fig = el('figure', 'card ' + c.st);
    var src = safeSrc(c.f);
    var thumb = safeThumb(c.t);
    if (src && thumb) {
      var a = el('a');
      a.href = src;
      var img = el('img');
      img.loading = 'lazy';
      img.decoding = 'async';
      img.src = thumb;
      img.alt = c.p;
      a.appendChild(img);
      fig.appendChild(a);
    } else if (src) {
      // No thumbnail: a tile linking to the image, never the full-size image in the page.
      var tile = el('a', 'nopreview', 'no preview');
      tile.href = src;
      fig.appendChild(tile);
    } else {
      fig.appendChild(el('div', 'noimg', c.e || 'no image'));
    }
    var cap = el('figcaption');
    var p = el('p', 'prompt', c.p);
    p.title = c.p;
    cap.appendChild(p);
    var meta = el('p', 'meta');
    meta.appendChild(el('span', 'badge ' + c.st, c.st));
    meta.appendChild(el('span', null, '#' + c.i + ' · seed ' + c.s + ' · ' + c.m));
    cap.appendChild(meta);
    if (c.em) cap.appendChild(el('p', 'err', (c.e ? c.e + ': ' : '') + c.em));
    fig.appendChild(cap);
    return fig;
  }
  function update() {
    count.textContent = shown + ' of ' + list.length;
    more.hidden = shown >= list.length;
  }
  function showMore() {
    var next = Math.min(shown + PAGE, list.length);
    var frag = document.createDocumentFragment();
    for (var i = shown; i < next; i++) frag.appendChild(card(list[i]));
    grid.appendChild(frag);
    shown = next;
    update();
  }
  function apply() {
    var q = search.value.trim().toLowerCase();
    list = cards.filter(function (c) {
      return (status === 'all' || c.st === status) && (!q || String(c.p).toLowerCase().indexOf(q) >= 0 || String(c.s) === q);
    });
    grid.textContent = '';
    shown = 0;
    showMore();
  }
  var buttons = document.querySelectorAll('[data-status]');
  Array.prototype.forEach.call(buttons, function (b) {
    b.addEventListener('click', function () {
      status = b.getAttribute('data-status');
      Array.prototype.forEach.call(buttons, function (o) { o.setAttribute('aria-pressed', String(o === b)); });
      apply();
    });
  });
  search.addEventListener('input', apply);
  more.addEventListener('click', showMore);
  document.querySelector('.controls').hidden = false;
  update();
})();
`;
