import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GALLERY_JS, PAGE_SIZE } from '../src/output/gallery-assets.js';
import { renderGallery, writeGallery } from '../src/output/gallery.js';
import { formatDuration } from '../src/durations.js';
import { escapeHtml, jsonForScript } from '../src/output/html.js';
import { thumbPathFor } from '../src/output/thumbnails.js';
import type { ManifestRecord } from '../src/output/record.js';
import { makeJob, makeRecord } from './output-fixtures.js';
import { tempDir } from './helpers/temp.js';

const EVIL = `<script>alert("pwned")</script> it's a "quoted" & <b>bold</b> \u2028 prompt`;
const EVIL_MSG = `<img src=x onerror="alert(1)"> '</script><script>alert(2)</script>`;

function records(): ManifestRecord[] {
  const ok = makeRecord({}, makeJob({ index: 1, prompt: EVIL }));
  const filtered = makeRecord({ status: 'filtered' }, makeJob({ index: 2, prompt: 'a quiet lake' }));
  const fail = (index: number, cls: 'moderated' | 'transient', message: string): ManifestRecord =>
    makeRecord(
      {
        status: 'failed',
        file: null,
        bytes: null,
        sha256: null,
        credits: 0,
        error: { class: cls, status: cls === 'moderated' ? 403 : 500, name: 'x', message },
      },
      makeJob({ index, prompt: `failing ${index} <i>` }),
    );
  return [
    fail(5, 'transient', 'server exploded'),
    ok,
    fail(3, 'moderated', EVIL_MSG),
    filtered,
    fail(4, 'transient', 'server exploded'),
  ];
}

const totals = {
  batch: 'night<1>',
  images: 2,
  credits: 6.000000001,
  durationMs: 3_723_000,
  generatedAt: '2024-05-01T08:00:00.000Z',
};

describe('escaping', () => {
  it('escapes text and attribute contexts', () => {
    // Attributes are always quoted, so a backtick needs no escaping.
    expect(escapeHtml(`<a href="x" title='y'>&\``)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;`');
    expect(escapeHtml(null)).toBe('');
    expect(escapeHtml(42)).toBe('42');
  });
  it('makes JSON safe inside a script element and still parseable', () => {
    const s = jsonForScript({ p: EVIL, m: EVIL_MSG });
    expect(s).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(s)).toEqual({ p: EVIL, m: EVIL_MSG });
  });
});

describe('renderGallery', () => {
  const html = renderGallery(records(), totals);

  it('never lets a prompt or message become markup', () => {
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('alert("pwned")</script>');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>bold');
    expect(html).not.toContain('<i>');
    expect(html).not.toContain('night<1>');
    expect(html).toContain(
      '&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; it&#39;s a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;',
    );
    // Exactly our two script elements: the JSON data and the inline JS.
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
  });

  it('carries every record in a parseable data block', () => {
    const m = /<script type="application\/json" id="ns-data">([^<]*)<\/script>/.exec(html);
    const data = JSON.parse(m![1]!) as {
      batch: string;
      cards: Array<{ i: number; p: string; st: string; f: string | null; em: string | null }>;
    };
    expect(data.batch).toBe('night<1>');
    expect(data.cards.map((c) => c.i)).toEqual([1, 2, 3, 4, 5]);
    expect(data.cards[0]!.p).toBe(EVIL);
    expect(data.cards[2]).toMatchObject({ st: 'failed', f: null, em: EVIL_MSG });
  });

  it('shows images lazily by relative path, with prompt, seed, model and status', () => {
    const file = records()[1]!.file!;
    // The page shows the thumbnail, linking to the image (without one it shows a tile: see below).
    const thumb = thumbPathFor(file)!;
    const withThumbs = renderGallery(records(), { ...totals, thumbs: new Map([[file, thumb]]) });
    expect(withThumbs).toContain(`<a href="${file}"><img loading="lazy" decoding="async" src="${thumb}"`);
    expect(html).toContain('seed 1234 · core');
    expect(html).toMatch(/<span class="badge filtered">filtered<\/span>/);
    expect(html).toMatch(/data-status="failed"[^>]*>failed \(3\)/);
  });

  it('groups failures by class and message, with totals', () => {
    const failures = html.slice(html.indexOf('<section class="failures">'));
    expect(failures).toMatch(/<summary>moderated \(1\)<\/summary>/);
    expect(failures).toMatch(/<summary>transient \(2\)<\/summary>/);
    expect(failures).toContain('<b>2×</b> 500 x: server exploded <small>(#4, #5)</small>');
    expect(html).toContain('images <b>2</b>');
    expect(html).toContain('credits <b>6</b>');
    expect(html).toContain('duration <b>1 h 2 min</b>');
  });

  it('never turns a hostile file path into a URL', () => {
    const bad = [
      makeRecord({ file: 'javascript:alert(1)' }, makeJob({ index: 1 })),
      makeRecord({ file: '../../../etc/passwd' }, makeJob({ index: 2 })),
    ];
    const out = renderGallery(bad, totals);
    expect(out).not.toContain('src="javascript');
    expect(out).not.toContain('href="../');
    expect(out.match(/<img /g)).toBeNull();
  });

  it('renders the first page as HTML and pages the rest from data', () => {
    const many = Array.from({ length: 450 }, (_, i) => makeRecord({}, makeJob({ index: i + 1 })));
    const out = renderGallery(many, { ...totals, images: 450 });
    expect(out.match(/<figure /g)).toHaveLength(PAGE_SIZE);
    expect(out.match(/"i":/g)).toHaveLength(450);
    expect(out).not.toMatch(/<script>(?:(?!<\/script>)[\s\S])*https?:\/\//); // no network in the JS
  });

  it('ships inline JS that pages and filters (run against a minimal fake DOM)', () => {
    const many = [
      ...Array.from({ length: 450 }, (_, i) =>
        makeRecord({}, makeJob({ index: i + 1, prompt: i === 7 ? 'the special one' : `p ${i}` })),
      ),
      ...records().map((r) => ({ ...r, index: r.index + 1000, id: `${r.id}-x` })),
    ];
    const thumbs = new Map(many.flatMap((r) => (r.file ? [[r.file, thumbPathFor(r.file)!] as const] : [])));
    const page = renderGallery(many, { ...totals, thumbs });
    const dataText = /id="ns-data">([^<]*)</.exec(page)![1]!;
    const dom = fakeDom(dataText);
    new Function('document', GALLERY_JS)(dom.document);
    const { grid, more, shown, controls, buttons, search } = dom;
    expect(controls.hidden).toBe(false);
    expect(shown.textContent).toBe(`${PAGE_SIZE} of 455`); // first page is the static HTML
    expect(more.hidden).toBe(false);
    more.fire('click');
    expect(grid.children).toHaveLength(PAGE_SIZE);
    buttons[3]!.fire('click'); // failed
    expect(grid.children).toHaveLength(3);
    expect(more.hidden).toBe(true);
    expect(buttons.map((b) => b.attrs['aria-pressed'])).toEqual(['false', 'false', 'false', 'true']);
    const failedCard = grid.children[1]!;
    expect(failedCard.className).toBe('card failed');
    expect(failedCard.children[0]!.className).toBe('noimg');
    buttons[0]!.fire('click');
    search.value = 'SPECIAL';
    search.fire('input');
    expect(grid.children).toHaveLength(1);
    const img = grid.children[0]!.children[0]!.children[0]!;
    expect(img).toMatchObject({ tag: 'img', loading: 'lazy', src: thumbPathFor(many[7]!.file!) });
  });

  it('shows an image without a thumbnail as a "no preview" tile linking to it, never the full image', () => {
    const recs = [makeRecord({}, makeJob({ index: 1, prompt: 'no thumb' }))];
    const page = renderGallery(recs, { ...totals, thumbs: new Map() });
    expect(page.match(/<img /g)).toBeNull();
    expect(page).toContain(`<a class="nopreview" href="${recs[0]!.file}">no preview</a>`);
    // The JS twin draws the same tile when it pages or filters.
    const dom = fakeDom(/id="ns-data">([^<]*)</.exec(page)![1]!);
    new Function('document', GALLERY_JS)(dom.document);
    dom.buttons[0]!.fire('click');
    const tile = dom.grid.children[0]!.children[0]!;
    expect(tile).toMatchObject({ tag: 'a', className: 'nopreview', href: recs[0]!.file, textContent: 'no preview' });
  });

  it('formats durations', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(42_400)).toBe('42 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
    expect(formatDuration(3_725_000)).toBe('1 h 2 min');
    expect(formatDuration(11_520_000, 'rough')).toBe('3.2 h');
    expect(formatDuration(125_000, 'rough')).toBe('2 min');
  });
});

describe('writeGallery', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('nightshift-output-'));
  });
  afterEach(() => cleanup());

  it('writes index.html atomically', async () => {
    const file = await writeGallery(dir, records(), totals);
    expect(file).toBe(path.join(dir, 'index.html'));
    expect(await readFile(file, 'utf8')).toBe(renderGallery(records(), totals));
    expect(await readdir(dir)).toEqual(['index.html']);
  });
});

/** Just enough DOM for GALLERY_JS: elements with children, text, attributes and listeners. */
class FakeEl {
  children: FakeEl[] = [];
  className = '';
  hidden = false;
  value = '';
  attrs: Record<string, string> = {};
  private text = '';
  private listeners: Record<string, Array<() => void>> = {};
  [k: string]: unknown;
  constructor(readonly tag: string) {}
  get textContent(): string {
    return this.text;
  }
  set textContent(v: string) {
    this.text = v;
    this.children = [];
  }
  appendChild(c: FakeEl): FakeEl {
    if (c.tag === '#fragment') this.children.push(...c.children);
    else this.children.push(c);
    return c;
  }
  setAttribute(k: string, v: string): void {
    this.attrs[k] = v;
  }
  getAttribute(k: string): string | null {
    return this.attrs[k] ?? null;
  }
  addEventListener(type: string, f: () => void): void {
    (this.listeners[type] ??= []).push(f);
  }
  fire(type: string): void {
    for (const f of this.listeners[type] ?? []) f();
  }
}

function fakeDom(dataText: string) {
  const data = new FakeEl('script');
  data.textContent = dataText;
  const grid = new FakeEl('main');
  const more = new FakeEl('button');
  const shown = new FakeEl('span');
  const search = new FakeEl('input');
  const controls = new FakeEl('div');
  controls.hidden = true;
  const buttons = ['all', 'succeeded', 'filtered', 'failed'].map((st) => {
    const b = new FakeEl('button');
    b.setAttribute('data-status', st);
    return b;
  });
  const byId: Record<string, FakeEl> = { 'ns-data': data, grid, more, shown, search };
  const document = {
    getElementById: (id: string) => byId[id] ?? null,
    querySelectorAll: (sel: string) => (sel === '[data-status]' ? buttons : []),
    querySelector: (sel: string) => (sel === '.controls' ? controls : null),
    createElement: (tag: string) => new FakeEl(tag),
    createDocumentFragment: () => new FakeEl('#fragment'),
  };
  return { document, grid, more, shown, search, controls, buttons };
}
