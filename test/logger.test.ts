import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { openUserLogFile } from '../src/output/safe-dirs.js';
import { createLogger } from '../src/logger.js';
import { MIN_RUN } from '../src/secrets.js';
import { tempDir } from './helpers/temp.js';

const KEY = `sk-${randomBytes(30).toString('base64url').slice(0, 40)}`;
const PASSWORD = 'redis-pw-0123456789';

function sink(isTTY = false) {
  let text = '';
  const stream = Object.assign(
    new Writable({
      write(chunk, _enc, cb) {
        text += String(chunk);
        cb();
      },
    }),
    { isTTY },
  );
  return { stream, text: () => text };
}

function expectNoSecret(text: string) {
  for (const s of [KEY, PASSWORD]) {
    for (let i = 0; i + MIN_RUN <= s.length; i++) expect(text).not.toContain(s.slice(i, i + MIN_RUN));
  }
}

/** Log calls that put a secret everywhere a log line can carry one. */
function logEverywhere(log: ReturnType<typeof createLogger>) {
  log.info(`message with ${KEY}`);
  log.warn({ detail: { deep: [`Bearer ${KEY}`] }, url: `redis://:${PASSWORD}@host:6379` }, 'nested fields');
  log.error({ err: new Error(`failed with ${KEY.slice(0, 20)}`) }, 'an error with a stack');
  log.child({ binding: KEY.slice(10) }).info('a child logger');
  log.info({ apiKey: 'short', headers: { authorization: 'x' } }, 'path redaction still applies');
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('createLogger with secrets', () => {
  it('removes secrets from every part of a JSON line, and keeps path redaction', () => {
    const out = sink();
    logEverywhere(createLogger({ level: 'info', stream: out.stream, secrets: [KEY, PASSWORD] }));
    const lines = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(5);
    expectNoSecret(out.text());
    expect(lines[0]!.msg).toBe('message with [redacted]');
    expect(JSON.stringify(lines[1])).toContain('[redacted]');
    expect(lines[4]).toMatchObject({ apiKey: '[redacted]', headers: { authorization: '[redacted]' } });
  });

  it('in readable (TTY) lines and in log files too', async () => {
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    const out = sink(true);
    const file = join(tmp.dir, 'run.log');
    const log = createLogger({
      level: 'info',
      stream: out.stream,
      files: [{ fd: openUserLogFile(file) }],
      secrets: [KEY, PASSWORD],
    });
    logEverywhere(log);
    log.flush();
    await new Promise((r) => setTimeout(r, 100));
    expect(out.text()).toContain('nested fields');
    expectNoSecret(out.text());
    const logged = await readFile(file, 'utf8');
    expect(logged.trim().split('\n')).toHaveLength(5);
    expectNoSecret(logged);
  });

  it('without secrets, prints what it is given (the check above can fail)', () => {
    const out = sink();
    createLogger({ level: 'info', stream: out.stream }).info(`message with ${KEY}`);
    expect(out.text()).toContain(KEY);
  });
});
