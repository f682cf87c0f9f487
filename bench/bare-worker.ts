/**
 * The baselines of the overhead benchmark, run as their own process like a nightshift worker:
 *   noop — a BullMQ Worker whose processor does nothing (the queue's own cost);
 *   http — the minimal correct pipeline: POST the prompt to the fake (multipart, Accept image/*),
 *          write the bytes durably (temp file, fsync, rename, fsync the folder), as nightshift does;
 *   files — http, writing what nightshift must leave per image, the plain way: the image and a JSON
 *          sidecar each to a temp file, both fsynced, renamed image first, the folder fsynced once,
 *          and a manifest line appended. No budget, no claim, no metadata in the image.
 *   floor — files with the sidecar not fsynced: what a sidecar file costs even when its durability
 *          is given up, so the most any pipeline leaving one per image can reach.
 * Usage: bare-worker.ts <noop|http|files|floor> <queue> <prefix> <concurrency> <jobs> [apiUrl outDir]
 * Exits 0 once <jobs> jobs have completed.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { FormData, Pool } from 'undici';

const [mode, queueName, prefix, concurrencyRaw, jobsRaw, apiUrl, outDir] = process.argv.slice(2);
const concurrency = Number(concurrencyRaw);
const jobs = Number(jobsRaw);
if (
  (mode !== 'noop' && mode !== 'http' && mode !== 'files' && mode !== 'floor') ||
  !queueName ||
  !prefix ||
  !(concurrency > 0) ||
  !(jobs > 0)
) {
  throw new Error(
    'usage: bare-worker.ts <noop|http|files|floor> <queue> <prefix> <concurrency> <jobs> [apiUrl outDir]',
  );
}

async function writeTemp(data: Buffer | string, sync = true): Promise<string> {
  const tmp = join(outDir!, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(data);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

async function syncFolder(): Promise<void> {
  const dir = await open(outDir!, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function writeDurably(target: string, data: Buffer): Promise<void> {
  await rename(await writeTemp(data), target);
  await syncFolder();
}

/** The image, its sidecar (a record of about the size of nightshift's) and a manifest line. */
async function writeWithRecord(job: Job<{ prompt: string; seed: number }>, bytes: Buffer): Promise<void> {
  const record = JSON.stringify({
    id: job.id,
    prompt: job.data.prompt,
    seed: job.data.seed,
    bytes: bytes.length,
    status: 'succeeded',
    file: `${job.id}.png`,
    started_at: new Date().toISOString(),
    params: { aspect_ratio: '1:1', output_format: 'png' },
  });
  const [image, sidecar] = await Promise.all([writeTemp(bytes), writeTemp(`${record}\n`, mode !== 'floor')]);
  await rename(image, join(outDir!, `${job.id}.png`));
  await rename(sidecar, join(outDir!, `${job.id}.json`));
  await syncFolder();
  await appendFile(join(outDir!, 'manifest.jsonl'), `${record}\n`);
}

const pool = apiUrl ? new Pool(apiUrl, { connections: concurrency }) : null;

async function generate(job: Job<{ prompt: string; seed: number }>): Promise<null> {
  const form = new FormData();
  form.set('prompt', job.data.prompt);
  form.set('seed', String(job.data.seed));
  form.set('output_format', 'png');
  const res = await pool!.request({
    path: '/v2beta/stable-image/generate/core',
    method: 'POST',
    headers: { authorization: 'Bearer sk-bench-key', accept: 'image/*' },
    body: form,
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`${res.statusCode}: ${bytes.toString('utf8').slice(0, 200)}`);
  if (mode === 'files' || mode === 'floor') await writeWithRecord(job, bytes);
  else await writeDurably(join(outDir!, `${job.id}.png`), bytes);
  return null;
}

const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
let completed = 0;
const worker = new Worker(queueName, mode === 'noop' ? async () => null : generate, {
  connection,
  prefix,
  concurrency,
});
worker.on('failed', (job, err) => process.stderr.write(`job ${job?.id} failed: ${err.message}\n`));
worker.on('completed', () => {
  if (++completed === jobs) {
    void (async () => {
      await worker.close();
      await pool?.close();
      connection.disconnect();
    })();
  }
});
