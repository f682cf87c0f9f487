import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildReport, type ReportSummary } from '../src/ops/report.js';
import { PAGE_SIZE } from '../src/output/gallery-assets.js';
import type { ManifestRecord } from '../src/output/record.js';
import { makeJob, makeRecord, tinyPng } from './output-fixtures.js';
import { tempDir, type TempDir } from './helpers/temp.js';

/**
 * The gallery as a person sees it: a batch on disk → buildReport → index.html opened from
 * file:// in Debian's Chromium (never a downloaded browser). .ci/run installs chromium, so
 * in CI a missing browser is a failure, not a skip.
 */

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && !process.env.CI) {
  console.warn(
    `gallery-chromium: skipped, ${CHROMIUM} is missing (apt-get install -y chromium); CI installs it and runs this test`,
  );
}

const TOTAL = 450;
const SCRIPT_PROMPT = '<script>window.__pwned = 1</script> a cat & "quotes"';
const BATCH = 'gallery-test';

/** 374 succeeded, 26 filtered, 20 transient failures (one message), 10 moderated. */
function statusOf(i: number): { status: ManifestRecord['status']; cls?: 'transient' | 'moderated' } {
  if (i % 15 === 0 && i <= 400) return { status: 'filtered' };
  if (i > 400 && i <= 420) return { status: 'failed', cls: 'transient' };
  if (i > 420 && i <= 430) return { status: 'failed', cls: 'moderated' };
  return { status: 'succeeded' };
}

async function writeBatch(out: string): Promise<{ succeeded: number; filtered: number; failed: number }> {
  const dir = join(out, BATCH);
  await mkdir(join(dir, 'images'), { recursive: true });
  const png = tinyPng(320, 200); // larger than a thumbnail, so the resize is real
  const sha256 = createHash('sha256').update(png).digest('hex');
  const lines: string[] = [];
  const counts = { succeeded: 0, filtered: 0, failed: 0 };
  for (let i = 1; i <= TOTAL; i++) {
    const { status, cls } = statusOf(i);
    counts[status]++;
    const prompt = i === 5 ? SCRIPT_PROMPT : `a lighthouse at dusk, number ${i}`;
    const job = makeJob({
      index: i,
      prompt,
      batch: BATCH,
      seed: 1000 + i,
      id: `${BATCH}--${String(i).padStart(24, '0')}`,
    });
    const failed = status === 'failed';
    const rec = makeRecord(
      {
        status,
        file: failed ? null : job.file,
        bytes: failed ? null : png.length,
        sha256: failed ? null : sha256,
        credits: failed ? 0 : 3,
        error:
          cls === 'transient'
            ? { class: 'transient', status: 500, name: 'server_error', message: 'an <b>internal</b> error' }
            : cls === 'moderated'
              ? { class: 'moderated', status: 403, name: 'content_moderation', message: 'flagged' }
              : null,
      },
      job,
    );
    if (!failed) await writeFile(join(dir, job.file), png);
    lines.push(JSON.stringify(rec));
  }
  await writeFile(join(dir, 'manifest.jsonl'), `${lines.join('\n')}\n`);
  return counts;
}

describe.skipIf(!available && !process.env.CI)('gallery in Chromium', () => {
  let tmp: TempDir | undefined;
  let out: string;
  let ctx: BrowserContext;
  let page: Page;
  let report: ReportSummary;
  let expected: { succeeded: number; filtered: number; failed: number };
  const errors: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir('nightshift-gallery-');
    out = tmp.dir;
    expected = await writeBatch(out);
    report = await buildReport(out, { api: 'https://api.stability.ai', batch: BATCH });
    ctx = await chromium.launchPersistentContext(join(out, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(report.gallery).href, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await ctx?.close();
    await tmp?.cleanup();
  });

  it('makes one 256 px WebP thumbnail per image, and keeps them on the next report', async () => {
    const images = expected.succeeded + expected.filtered;
    expect(report.thumbnails).toEqual({ made: images, upToDate: 0, failed: 0 });
    const thumbs = await readdir(join(out, BATCH, 'thumbs'));
    expect(thumbs.filter((f) => f.endsWith('.webp'))).toHaveLength(images);
    expect(thumbs.filter((f) => f.includes('.tmp'))).toHaveLength(0);
    const again = await buildReport(out, { api: 'https://api.stability.ai', batch: BATCH });
    expect(again.thumbnails).toEqual({ made: 0, upToDate: images, failed: 0 });
    expect((await stat(join(out, BATCH, 'thumbs', thumbs[0]!))).size).toBeGreaterThan(0);
  });

  it('shows a page of thumbnails linking to the full images, with totals', async () => {
    expect(await page.locator('#grid .card').count()).toBe(PAGE_SIZE);
    expect(await page.locator('#shown').textContent()).toBe(`${PAGE_SIZE} of ${TOTAL}`);
    expect(await page.locator('[data-status="all"]').textContent()).toBe(`all (${TOTAL})`);
    const first = page.locator('#grid .card').first();
    expect(await first.locator('img').getAttribute('src')).toMatch(/^thumbs\/00001-.*\.webp$/);
    expect(await first.locator('a').getAttribute('href')).toMatch(/^images\/00001-.*\.png$/);
    // The thumbnail decodes, and is the thumbnail (≤ 256 px), not the 320 px original.
    const width = await first.locator('img').evaluate(async (el) => {
      const img = el as unknown as { decode(): Promise<void>; naturalWidth: number };
      await img.decode();
      return img.naturalWidth;
    });
    expect(width).toBe(256);
    const meta = await first.locator('.meta').textContent();
    expect(meta).toContain('seed 1001');
    expect(meta).toContain('core');
    expect(meta).toContain('succeeded');
    await expect.poll(() => page.locator('.totals').textContent()).toContain(`failed ${expected.failed}`);
  });

  it('pages through every card', async () => {
    await page.click('#more');
    expect(await page.locator('#grid .card').count()).toBe(2 * PAGE_SIZE);
    await page.click('#more');
    expect(await page.locator('#grid .card').count()).toBe(TOTAL);
    expect(await page.locator('#more').isHidden()).toBe(true);
  });

  it('filters by status', async () => {
    await page.click('[data-status="failed"]');
    expect(await page.locator('#grid .card').count()).toBe(expected.failed);
    expect(await page.locator('#grid .card.failed').count()).toBe(expected.failed);
    expect(await page.locator('#grid .card .noimg').count()).toBe(expected.failed);
    await page.click('[data-status="filtered"]');
    expect(await page.locator('#grid .card').count()).toBe(expected.filtered);
    await page.click('[data-status="all"]');
    expect(await page.locator('#shown').textContent()).toBe(`${PAGE_SIZE} of ${TOTAL}`);
  });

  it('groups failures by class with their messages, escaped', async () => {
    const summaries = await page.locator('.failures summary').allTextContents();
    expect(summaries).toEqual(['moderated (10)', 'transient (20)']);
    const items = await page.locator('.failures li').allTextContents();
    expect(items.some((t) => t.includes('20×') && t.includes('an <b>internal</b> error'))).toBe(true);
  });

  it('shows a <script> prompt as text, in the static page and after filtering', async () => {
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    const staticText = await page.locator('#grid .card').nth(4).locator('.prompt').textContent();
    expect(staticText).toBe(SCRIPT_PROMPT);
    await page.fill('#search', 'pwned');
    expect(await page.locator('#grid .card').count()).toBe(1);
    expect(await page.locator('#grid .card .prompt').textContent()).toBe(SCRIPT_PROMPT);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await page.fill('#search', '');
  });

  it('logs no console errors; keeps a screenshot', async () => {
    await mkdir(resolve('test-artifacts'), { recursive: true });
    await page.screenshot({ path: resolve('test-artifacts/gallery.png') });
    expect(errors).toEqual([]);
  });
});
