/**
 * A client that loses a reply to a reconnect sends the command again (ioredis does, for every
 * command in flight): each billing script must book what it books once, however often it runs.
 * A TCP proxy in front of the real Redis drops the connection right after Redis answered the
 * script, so the script ran and its caller never heard.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createJobSteps } from '../src/billing/job-steps.js';
import { createLedger } from '../src/billing/ledger.js';
import { createRateLimiter } from '../src/billing/rate-limiter.js';
import { createRedis } from '../src/redis/connect.js';
import { cleanupPrefix, newRedis, randomPrefix } from './helpers/redis.js';

/** Forwards to Redis; once armed with `marker`, cuts both sides as the reply to the command holding it arrives. */
async function cuttingProxy(): Promise<{ arm(marker: string): void; cuts(): number; url: string; server: Server }> {
  let marker: string | null = null;
  let armed = false;
  let cuts = 0;
  const server = createServer((client: Socket) => {
    const up = connect(6379, '127.0.0.1');
    client.on('data', (d) => {
      if (marker !== null && d.includes(marker)) armed = true;
      up.write(d);
    });
    up.on('data', (d) => {
      if (!armed) return void client.write(d);
      armed = false;
      marker = null;
      cuts++;
      client.destroy();
      up.destroy();
    });
    for (const [a, b] of [
      [client, up],
      [up, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    arm: (m) => (marker = m),
    cuts: () => cuts,
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
  };
}

describe('billing scripts run twice book once', () => {
  const plain = newRedis();
  const closing: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c();
  });

  async function setup() {
    const px = await cuttingProxy();
    const prefix = randomPrefix();
    const redis: Redis = createRedis(px.url);
    redis.on('error', () => {});
    await redis.connect();
    closing.push(
      async () => void (await cleanupPrefix(plain, prefix)),
      () => new Promise<void>((r) => px.server.close(() => r())),
      () => void redis.disconnect(),
    );
    const limiter = createRateLimiter({ redis, prefix, keyId: 'k', count: 1000, windowMs: 1000, marginMs: 0 });
    const steps = createJobSteps({ redis, prefix, api: 'mock', claimTtlMs: 30_000, limiter });
    const ledger = createLedger({ redis: plain, prefix, api: 'mock' });
    return { px, steps, ledger };
  }

  const job = { batch: 'b', id: 'b--replayed-job' };
  const owner = 'w1:t1';
  const file = 'images/00001-x-replaye.png';

  it('begin, then finish of a paid request', async () => {
    const { px, steps, ledger } = await setup();
    px.arm(job.id);
    expect((await steps.begin(job, { owner, credits: 3, ownFile: file })).kind).toBe('go');
    expect(px.cuts()).toBe(1);
    expect(await ledger.get('b')).toMatchObject({ reserved: 3, billed: 0 });
    px.arm('paid');
    await steps.finish(job, { credits: 3, mode: 'paid', owner, state: 'succeeded', file });
    expect(px.cuts()).toBe(2);
    expect(await ledger.get('b')).toMatchObject({ reserved: 0, billed: 3, maybeBilled: 0 });
  });

  it.each([
    ['answered, its record not complete', 'billed', { billed: 3, maybeBilled: 0 }],
    ['that timed out (possibly billed)', 'maybe_billed', { billed: 0, maybeBilled: 3 }],
    ['refused before it left', 'unbilled', { billed: 0, maybeBilled: 0 }],
  ] as const)('a request %s is booked once', async (_what, outcome, booked) => {
    const { px, steps, ledger } = await setup();
    await steps.begin(job, { owner, credits: 3, ownFile: file });
    px.arm(job.id);
    await steps.closeSent(job, { owner, credits: 3, outcome });
    expect(px.cuts()).toBe(1);
    expect(await ledger.get('b')).toMatchObject({ reserved: 0, ...booked });
  });

  it('another owner that took the lapsed claim over and finished first leaves nothing reserved', async () => {
    const { steps, ledger } = await setup();
    await steps.begin(job, { owner, credits: 3, ownFile: file });
    await plain.del((await plain.keys(`*${job.id}:inflight`))[0]!);
    await steps.begin(job, { owner: 'w2:t9', credits: 3, ownFile: file });
    await steps.finish(job, { credits: 3, mode: 'paid', owner: 'w2:t9', state: 'succeeded', file });
    await steps.finish(job, { credits: 3, mode: 'paid', owner, state: 'succeeded', file });
    expect(await ledger.get('b')).toMatchObject({ maybeBilled: 3, billed: 3, reserved: 0 });
  });

  it('a paid finish after another owner took the lapsed claim over books nothing more', async () => {
    const { steps, ledger } = await setup();
    await steps.begin(job, { owner, credits: 3, ownFile: file });
    // The claim lapses; another worker takes the job, counting the first request as possibly billed.
    await plain.del((await plain.keys(`*${job.id}:inflight`))[0]!);
    expect(await steps.begin(job, { owner: 'w2:t9', credits: 3, ownFile: file })).toMatchObject({ orphan: true });
    await steps.finish(job, { credits: 3, mode: 'paid', owner, state: 'succeeded', file });
    expect(await ledger.get('b')).toMatchObject({ maybeBilled: 3, billed: 0, reserved: 3 });
    await steps.finish(job, { credits: 3, mode: 'paid', owner: 'w2:t9', state: 'succeeded', file });
    expect(await ledger.get('b')).toMatchObject({ maybeBilled: 3, billed: 3, reserved: 0 });
  });
});
