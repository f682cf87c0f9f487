import { isIP } from 'node:net';
import { UsageError } from '../errors.js';
import { dropUserinfo } from '../secrets.js';

/**
 * URLs given by the user. An API host is also an identity: every job records the API it is meant
 * for and a worker only runs jobs of its own API, so one API must have one spelling
 * (`HTTP://Host:443/` and `https://host` are the same API).
 */

/** A URL safe to print: user and password removed. */
export function withoutUserinfo(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  return u.href;
}

interface UrlRules {
  example: string;
  /** The path and query may be a token (webhooks): errors show only the origin. */
  secretPath?: boolean;
}

function parseUrl(raw: string, name: string, rules: UrlRules): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    // Not even the text is shown when it may hold a token.
    const shown = rules.secretPath ? '' : ` "${dropUserinfo(raw).slice(0, 80)}"`;
    throw new UsageError(`${name}:${shown} is not a URL; write it with its scheme, e.g. ${rules.example}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${name}: must start with https:// or http:// (got ${url.protocol}//…)`);
  }
  if (url.username !== '' || url.password !== '') {
    // The password must not reach a log, a job or an error message: say where, not what.
    const where = rules.secretPath ? `${url.protocol}//${url.host}/…` : withoutUserinfo(url);
    throw new UsageError(`${name}: must not carry a user or password (${where}); pass secrets another way`);
  }
  return url;
}

/** True for 127.0.0.0/8, ::1 and localhost: plain http stays on this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * The API host in its one spelling: lower-case scheme and host, no default port, no trailing
 * slash, no query or fragment. A path prefix (a proxy's) is kept.
 */
export function normalizeApiHost(raw: string, name: string): string {
  const url = parseUrl(raw, name, { example: 'https://api.stability.ai' });
  if (url.search !== '' || url.hash !== '') throw new UsageError(`${name}: must not have a query or fragment`);
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

/** A webhook URL: its path and query often are the token, so only its origin is ever shown. */
export function parseNotifyUrl(raw: string, name: string): URL {
  return parseUrl(raw, name, { example: 'https://hooks.example.com/…', secretPath: true });
}
