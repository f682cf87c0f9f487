import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseNotifyUrl } from '../src/config/urls.js';
import { sendNotice, statusOfExit, type BatchNotice } from '../src/ops/notify.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';

interface Received {
  method: string;
  type: string | undefined;
  body: unknown;
}

/** A local receiver on port 0; `handler` decides the answer. */
async function receiver(handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end('ok')) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      got.push({ method: req.method!, type: req.headers['content-type'], body: JSON.parse(text) });
      handler(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=secret`);
  return {
    url,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function logs() {
  const lines: Array<{ level: string; msg: string }> = [];
  return {
    lines,
    logger: {
      info: (_o: object, msg: string) => lines.push({ level: 'info', msg }),
      warn: (_o: object, msg: string) => lines.push({ level: 'warn', msg }),
    } as never,
  };
}

const NOTICE: BatchNotice = {
  batch: 'b',
  status: 'failed',
  exit_code: 1,
  counts: { jobs: 3, succeeded: 1, filtered: 1, failed: 1 },
  by_class: { transient: 1 },
  credits: 6,
  duration_ms: 1234,
  manifest: '/out/b/manifest.jsonl',
  gallery: '/out/b/index.html',
};

describe('sendNotice', () => {
  it('POSTs the summary as JSON', async () => {
    const r = await receiver();
    const l = logs();
    try {
      expect(await sendNotice(r.url, NOTICE, { logger: l.logger })).toBe(true);
      expect(r.got).toEqual([{ method: 'POST', type: 'application/json', body: NOTICE }]);
      // The token in the query string never reaches the log.
      expect(l.lines.map((x) => x.msg).join('\n')).not.toContain('secret');
    } finally {
      await r.close();
    }
  });

  it('logs a non-2xx answer, a timeout and a refused connection, and never throws', async () => {
    const bad = await receiver((_q, res) => {
      res.statusCode = 500;
      res.end('no');
    });
    const slow = await receiver(() => {
      /* never answers */
    });
    const l = logs();
    try {
      expect(await sendNotice(bad.url, NOTICE, { logger: l.logger })).toBe(false);
      expect(await sendNotice(slow.url, NOTICE, { logger: l.logger, timeoutMs: 200 })).toBe(false);
      const closed = await receiver();
      const gone = closed.url;
      await closed.close();
      expect(await sendNotice(gone, NOTICE, { logger: l.logger, timeoutMs: 2000 })).toBe(false);
      expect(l.lines.map((x) => x.level)).toEqual(['warn', 'warn', 'warn']);
      expect(l.lines[0]!.msg).toMatch(/answered 500/);
      expect(l.lines[1]!.msg).toMatch(/timed out/);
      expect(l.lines.map((x) => x.msg).join('\n')).not.toContain('secret');
    } finally {
      await bad.close();
      await slow.close();
    }
  });

  it('keeps the token out of a failure that quotes the URL', async () => {
    const l = logs();
    const url = new URL('http://127.0.0.1:9/services/T0000/B0000/tok-abcdefghijklmnop');
    const quoting = (async () => {
      throw new Error(`cannot POST ${url.href}`);
    }) as unknown as typeof fetch;
    expect(await sendNotice(url, NOTICE, { logger: l.logger, fetch: quoting })).toBe(false);
    expect(l.lines[0]!.msg).toMatch(
      /notification to http:\/\/127\.0\.0\.1:9 failed: cannot POST http:\/\/127\.0\.0\.1:9\[redacted\]/,
    );
    expect(l.lines[0]!.msg).not.toContain('tok-abcdefgh');
  });

  it('refuses a URL that is not http(s) up front, and names exit codes', () => {
    expect(() => parseNotifyUrl('file:///etc/passwd', '--notify-url')).toThrow(/must start with https:\/\/ or http/);
    expect(() => parseNotifyUrl('not a url', '--notify-url')).toThrow(/not a URL/);
    expect([0, 1, 4, 130].map(statusOfExit)).toEqual(['finished', 'failed', 'stopped', 'interrupted']);
  });
});

describe('run --notify-url', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
  });
  afterEach(async () => {
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  it('refuses a notify URL with a password at start: exit 2, nothing enqueued, the password never printed', async () => {
    const url = 'https://u:pw-s3cret-value@example.com/h';
    const args = ['run', 'prompts/anime-sunset.txt', '--mock', '--out', tmp.dir];
    for (const [extra, env] of [
      [['--notify-url', url], cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() })],
      [[], cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl(), NIGHTSHIFT_NOTIFY_URL: url })],
    ] as const) {
      const res = await runCli([...args, ...extra], env);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/user or password/);
      expect(res.stdout + res.stderr).not.toContain('pw-s3cret-value');
      expect(await redis.keys(`${prefix}*`)).toEqual([]);
    }
  });

  it('posts the finished batch once; an unreachable receiver does not change the exit code', async () => {
    const r = await receiver();
    const env = cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() });
    try {
      const res = await runCli(
        ['run', 'prompts/anime-sunset.txt', '--mock', '--out', tmp.dir, '--batch', 'n1', '--notify-url', r.url.href],
        env,
      );
      expect(res.code, res.stderr).toBe(0);
      expect(r.got).toHaveLength(1);
      const body = r.got[0]!.body as BatchNotice;
      expect(body).toMatchObject({ batch: 'n1', status: 'finished', exit_code: 0, by_class: {} });
      expect(body.counts.jobs).toBeGreaterThan(0);
      expect(body.counts.succeeded).toBe(body.counts.jobs);
      expect(body.manifest).toMatch(/n1\/manifest\.jsonl$/);
      expect(body.gallery).toMatch(/n1\/index\.html$/);
      expect(body.duration_ms).toBeGreaterThan(0);
    } finally {
      await r.close();
    }
    const again = await runCli(
      ['run', 'prompts/anime-sunset.txt', '--mock', '--out', tmp.dir, '--batch', 'n2', '--notify-url', r.url.href],
      env,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/notification to http:\/\/127\.0\.0\.1:\d+ failed/);
  });
});
