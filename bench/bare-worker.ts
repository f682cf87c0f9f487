/**
 * The baselines of the overhead benchmark, run as their own process like a nightshift worker:
 *   noop — a BullMQ Worker whose processor does nothing (the queue's own cost);
 *   http — the minimal correct pipeline: POST the prompt to the fake (multipart, Accept image/*),
 *          write the bytes durably (temp file, fsync, rename, fsync the folder), as nightshift does.
 * Usage: bare-worker.ts <noop|http> <queue> <prefix> <concurrency> <jobs> [apiUrl outDir]
 * Exits 0 once <jobs> jobs have completed.
 */
import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { FormData, Pool } from 'undici';

const [mode, queueName, prefix, concurrencyRaw, jobsRaw, apiUrl, outDir] = process.argv.slice(2);
const concurrency = Number(concurrencyRaw);
const jobs = Number(jobsRaw);
if ((mode !== 'noop' && mode !== 'http') || !queueName || !prefix || !(concurrency > 0) || !(jobs > 0)) {
  throw new Error('usage: bare-worker.ts <noop|http> <queue> <prefix> <concurrency> <jobs> [apiUrl outDir]');
}

async function writeDurably(target: string, data: Buffer): Promise<void> {
  const tmp = join(outDir!, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, target);
  const dir = await open(outDir!, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
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
  await writeDurably(join(outDir!, `${job.id}.png`), bytes);
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
