/** What every finished batch must show, whatever happened to the hosts on the way. */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { imagesOnDisk, type BatchRun, type ManifestLine } from './batch-run.js';
import { billing, promptOf, type Billing } from './billing.js';

/**
 * One manifest line and one image per job, every job succeeded, every job billed, none billed
 * more than twice, and nothing billed that is not one of the batch's prompts.
 */
export async function expectEveryImageOnce(
  run: BatchRun,
  jobs: number,
): Promise<{ bill: Billing; manifest: Map<string, ManifestLine>; images: number }> {
  const manifest = await run.manifest();
  expect(manifest.size).toBe(jobs);
  const lines = [...manifest.values()];
  expect(lines.filter((l) => l.status !== 'succeeded')).toEqual([]);
  const files = lines.map((l) => l.file);
  expect(files.every((f) => typeof f === 'string')).toBe(true);
  expect(new Set(files).size).toBe(jobs);
  for (const f of files) expect((await stat(join(run.batchDir, f!))).size).toBeGreaterThan(0);
  const images = await imagesOnDisk(run.batchDir);
  expect(images).toHaveLength(jobs);
  expect(new Set(lines.map((l) => l.prompt))).toEqual(run.prompts);

  const bill = billing(run.mock.stats);
  expect(bill.perGeneration.size).toBe(jobs);
  for (const [g, n] of bill.perGeneration) {
    expect(run.prompts.has(promptOf(g)), g).toBe(true);
    expect(n, g).toBeLessThanOrEqual(2);
  }
  return { bill, manifest, images: images.length };
}

/** The manifest's status for the job of each generation. */
export function statusOfGenerations(manifest: Map<string, ManifestLine>, generations: Iterable<string>) {
  const byPrompt = new Map([...manifest.values()].map((l) => [l.prompt, l.status]));
  return [...generations].map((g) => byPrompt.get(promptOf(g)) ?? 'missing');
}
