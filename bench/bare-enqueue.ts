/**
 * The enqueue benchmark's baseline: addBulk of already-planned jobs (the same ids, data and options
 * nightshift adds), streamed from a JSONL file of `{id, data}` in chunks of 500, with no validation,
 * no existence check and no batch bookkeeping. Usage: bare-enqueue.ts <jobs.jsonl> <queue> <prefix>
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const [file, queueName, prefix] = process.argv.slice(2);
if (!file || !queueName || !prefix) throw new Error('usage: bare-enqueue.ts <jobs.jsonl> <queue> <prefix>');
const DAY_S = 24 * 3600;
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queue = new Queue(queueName, {
  connection,
  prefix,
  defaultJobOptions: {
    attempts: 5,
    backoff: { type: 'nightshift' },
    removeOnComplete: { age: 30 * DAY_S },
    removeOnFail: { age: 30 * DAY_S },
    stackTraceLimit: 2,
  },
});
let chunk: Array<{ name: string; data: unknown; opts: { jobId: string } }> = [];
let added = 0;
for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
  if (!line) continue;
  const j = JSON.parse(line) as { id: string; data: unknown };
  chunk.push({ name: 'generate', data: j.data, opts: { jobId: j.id } });
  if (chunk.length === 500) {
    await queue.addBulk(chunk);
    added += chunk.length;
    chunk = [];
  }
}
if (chunk.length > 0) await queue.addBulk(chunk);
added += chunk.length;
await queue.close();
connection.disconnect();
process.stdout.write(`${JSON.stringify({ added })}\n`);
