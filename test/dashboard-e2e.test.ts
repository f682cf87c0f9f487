/**
 * The dashboard has no login, so it trusts no web page: over real HTTP to the real `dashboard`
 * process, a request addressed to another host name (DNS rebinding) gets 421, a state-changing
 * request from another origin gets 403 and changes nothing, its own page's requests work; a port in
 * use or an address it cannot bind is a clear exit 3.
 */
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { freePort } from '../src/redis/private.js';
import { cliEnv, runCli, startCli } from './helpers/cli.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { until } from './helpers/wait.js';

interface Reply {
  status: number;
  body: string;
}

function send(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string> },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers ?? {} },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.method === 'POST' ? 'name=x&data={}' : undefined);
  });
}

describe('nightshift dashboard', () => {
  const redis = newRedis();
  let prefix: string;
  let queueName: string;
  let env: NodeJS.ProcessEnv;
  let child: ReturnType<typeof startCli> | undefined;
  let blocker: Server | undefined;

  beforeEach(() => {
    prefix = randomPrefix();
    queueName = `dash-${Math.random().toString(36).slice(2, 8)}`;
    env = cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() });
  });
  afterEach(async () => {
    child?.kill('SIGTERM');
    await child?.result;
    child = undefined;
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
    await cleanupPrefix(redis, prefix);
  });

  async function start(extra: string[] = []): Promise<number> {
    const port = await freePort();
    child = startCli(['dashboard', '--queue', queueName, '--port', String(port), ...extra], env);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await until('the dashboard to listen', () => out.includes('dashboard for queue'), 20_000);
    return port;
  }

  it('answers its own address and localhost, and 421 to any other Host header', async () => {
    const port = await start();
    expect((await send(port, { headers: { host: `127.0.0.1:${port}` } })).status).toBe(200);
    expect((await send(port, { headers: { host: `localhost:${port}` } })).status).toBe(200);
    for (const host of [`evil.example:${port}`, 'evil.example', `localhost:${port + 1}`, `127.0.0.1.nip.io:${port}`]) {
      const r = await send(port, { path: '/api/queues', headers: { host } });
      expect(r.status, host).toBe(421);
      expect(r.body).not.toContain(queueName);
    }
  });

  it('with --allow-actions, a cross-site POST or PUT gets 403 and changes nothing; its own origin works', async () => {
    const port = await start(['--allow-actions']);
    const host = `127.0.0.1:${port}`;
    const queue = new Queue(queueName, { connection: { url: redisUrl() }, prefix });
    try {
      // A simple request a foreign page can make a browser send without asking: text/plain POST.
      const add = await send(port, {
        method: 'POST',
        path: `/api/queues/${queueName}/add`,
        headers: { host, origin: 'http://evil.example', 'content-type': 'text/plain' },
      });
      expect(add.status).toBe(403);
      for (const headers of <Array<Record<string, string>>>[
        { host, origin: 'http://evil.example' },
        { host }, // no Origin at all
        { host, origin: `http://${host}`, 'sec-fetch-site': 'cross-site' },
        { host, origin: 'null' },
      ]) {
        const r = await send(port, { method: 'PUT', path: `/api/queues/${queueName}/pause`, headers });
        expect(r.status, JSON.stringify(headers)).toBe(403);
      }
      expect(await queue.isPaused()).toBe(false);
      expect(await queue.count()).toBe(0);

      const own = await send(port, {
        method: 'PUT',
        path: `/api/queues/${queueName}/pause`,
        headers: { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
      });
      expect(own.status, own.body).toBeLessThan(300);
      expect(await queue.isPaused()).toBe(true);
    } finally {
      await queue.close();
    }
  });

  it('exits 3 with a clear message when its port is in use', async () => {
    const port = await freePort();
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(port, '127.0.0.1', () => r()));
    const r = await runCli(['dashboard', '--queue', queueName, '--port', String(port)], env, 20_000);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`the dashboard cannot listen on 127.0.0.1:${port}: port ${port} is in use`);
    expect(r.stderr).not.toMatch(/Cannot read properties|TypeError/);
  });

  it('exits 3 when the host is not an address of this machine, or does not resolve', async () => {
    // 192.0.2.1 is TEST-NET-1: never an address of this machine.
    const r = await runCli(['dashboard', '--queue', queueName, '--port', '0', '--host', '192.0.2.1'], env, 20_000);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot listen on 192\.0\.2\.1:0: 192\.0\.2\.1 is not an address of this machine/);
    const n = await runCli(
      ['dashboard', '--queue', queueName, '--port', '0', '--host', 'no-such-host.invalid'],
      env,
      20_000,
    );
    expect(n.code).toBe(3);
    expect(n.stderr).toMatch(/no-such-host\.invalid does not resolve/);
  });
});
