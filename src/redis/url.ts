import { EnvironmentError } from '../errors.js';
import { dropUserinfo } from '../secrets.js';

/**
 * Redis URLs as the user gives them (`--redis`, REDIS_URL): checked before a client sees them,
 * because the client reads a database it cannot parse as NaN (and crashes on SELECT NaN) and a
 * port it cannot parse as the default one. The password is never part of a message.
 */

/** A Redis URL safe to print: user and password never appear, even when the URL does not parse. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    // Without a host (`redis:/pw@host`) the URL keeps the "@" in its path.
    return dropUserinfo(u.toString().replace(/\/$/, ''));
  } catch {
    return dropUserinfo(url).slice(0, 200);
  }
}

export { dropUserinfo };

export interface RedisUrlParts {
  /** The URL without user and password, for messages. */
  shown: string;
  /** The database number (0 when the URL names none). */
  db: number;
}

function fail(shown: string, problem: string): EnvironmentError {
  return new EnvironmentError(`the Redis URL ${shown} ${problem}`);
}

/** Why the authority's port is not a port, when it is not; the URL parser only says "Invalid URL". */
function portProblem(url: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/.exec(url);
  const port = m?.[2];
  if (port === undefined || port === '') return null;
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return `has port "${port.slice(0, 20)}", which is not a port number (1–65535)`;
  }
  return null;
}

/**
 * Checks a Redis URL: `redis://` or `rediss://`, a port from 1 to 65535 when one is given, and a
 * database that is a number (`/3`). Throws EnvironmentError (exit 3) naming the problem.
 */
export function checkRedisUrl(url: string): RedisUrlParts {
  const shown = redactRedisUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Judged on the printable form: in an unparsable URL a "port" may be part of the password.
    const hint = url.includes('@') ? '; a password with / # ? or @ in it must be percent-encoded' : '';
    throw fail(shown, portProblem(shown) ?? `is not a URL (e.g. redis://127.0.0.1:6379/0)${hint}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw fail(shown, `must start with redis:// or rediss:// (got ${u.protocol}//)`);
  }
  if (u.hostname === '') throw fail(shown, 'names no host (e.g. redis://127.0.0.1:6379/0)');
  const port = portProblem(shown);
  if (port !== null || u.port === '0') throw fail(shown, port ?? 'has port 0, which is not a port number (1–65535)');
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,9}$/.test(path)) {
    throw fail(shown, `names database "${dropUserinfo(path).slice(0, 40)}", which is not a number (e.g. /0)`);
  }
  return { shown, db: path === '' ? 0 : Number(path) };
}
