import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRedactor, MIN_RUN, REDACTED, urlSecrets } from '../src/secrets.js';

/** `sk-` and 40 characters, like a real key; random per run so no fixture can pass by accident. */
function newKey(): string {
  return `sk-${randomBytes(30).toString('base64url').slice(0, 40)}`;
}

/** Every window of MIN_RUN characters of `secret` that occurs in `text`. */
function leaks(text: string, secret: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + MIN_RUN <= secret.length; i++) {
    const g = secret.slice(i, i + MIN_RUN);
    if (text.includes(g)) out.push(g);
  }
  return out;
}

describe('createRedactor', () => {
  const key = newKey();
  const redact = createRedactor([key]);

  it('replaces the key and `Bearer <key>`, in any case of the word', () => {
    expect(redact(`key=${key}.`)).toBe(`key=${REDACTED}.`);
    expect(redact(`Authorization: Bearer ${key}`)).toBe(`Authorization: ${REDACTED}`);
    expect(redact(`bearer   ${key} and BEARER ${key}`)).toBe(`${REDACTED} and ${REDACTED}`);
    expect(redact(`${key}${key}`)).toBe(`${REDACTED}${REDACTED}`);
  });

  it('replaces any run of 12 or more of its characters, wherever it sits', () => {
    for (const [from, to] of [
      [0, 12],
      [5, 17],
      [key.length - 12, key.length],
      [3, 30],
    ] as const) {
      const slice = key.slice(from, to);
      const out = redact(`before ${slice} after`);
      expect(out).toBe(`before ${REDACTED} after`);
    }
    // Glued to other text on both sides. The glue is outside the key's alphabet (base64url), so it
    // can never extend the run, whatever the random key holds next to the slice.
    expect(redact(`..${key.slice(7, 25)}~~`)).toBe(`..${REDACTED}~~`);
  });

  it('leaves runs shorter than 12 and ordinary text alone', () => {
    const short = key.slice(4, 4 + MIN_RUN - 1);
    expect(redact(`a ${short} b`)).toBe(`a ${short} b`);
    const common = 'sk- the request could not be processed; Bearer token missing, error 401 unauthorized';
    expect(redact(common)).toBe(common);
    expect(redact('')).toBe('');
  });

  it('a key cut by a length limit leaks no prefix when redaction runs first', () => {
    const message = `${'x'.repeat(281)}${key}`;
    const cut = (s: string) => s.slice(0, 300);
    expect(leaks(cut(message), key)).not.toEqual([]); // cutting first leaks 19 characters …
    expect(cut(message)).toContain(key.slice(0, 19));
    const clean = cut(redact(message)); // … redacting first leaks none
    expect(leaks(clean, key)).toEqual([]);
    expect(clean).not.toContain(key.slice(0, MIN_RUN));
  });

  it('handles several secrets, short ones whole, and their JSON and URL spellings', () => {
    const password = 'p@ss"wo\\rd/9';
    const token = 'T0KEN-abcdefghij-XYZ';
    const hook = createRedactor([key, password, token, 'short9', undefined, null, '']);
    const text = `${key} redis:${password} json:${JSON.stringify(password)} url:${encodeURIComponent(password)} ${token}`;
    const out = hook(text);
    expect(out).not.toContain(key.slice(0, MIN_RUN));
    expect(out).not.toContain(password);
    expect(out).not.toContain(JSON.stringify(password).slice(1, -1));
    expect(out).not.toContain(encodeURIComponent(password));
    expect(out).not.toContain(token.slice(3, 15));
    // Values too short to tell apart from words are not secrets.
    expect(hook('short9 mock test')).toBe('short9 mock test');
    const eight = createRedactor(['pw123456']);
    expect(eight('user:pw123456@host, Bearer pw123456')).toBe(`user:${REDACTED}@host, ${REDACTED}`);
    expect(eight('pw12345')).toBe('pw12345');
  });

  it('with no secrets is the identity', () => {
    const none = createRedactor([]);
    expect(none(`anything ${key}`)).toBe(`anything ${key}`);
  });

  it('is linear: a 1 MB text of near-misses is one pass', () => {
    // Every window starts with the key's first two characters but never matches 12: the worst case
    // for the filter. Judged by the result, not the clock; bench/ measures speed.
    const near = key.slice(0, 11);
    const text = `${near}#`.repeat(1_000_000 / 12);
    expect(redact(text)).toBe(text);
    expect(redact(`${text}${key}`)).toBe(`${text}${REDACTED}`);
  });
});

describe('urlSecrets', () => {
  it('is the user, password and the path and query, never the origin', () => {
    const s = urlSecrets(new URL('https://bob:hunter2%21x@hooks.example.com/services/T0/B0/XYZ?token=abc'));
    expect(s).toContain('bob');
    expect(s).toContain('hunter2!x');
    expect(s).toContain('/services/T0/B0/XYZ?token=abc');
    expect(s.join(' ')).not.toContain('hooks.example.com');
    expect(urlSecrets(new URL('https://hooks.example.com/')).filter(Boolean)).toEqual([]);
  });
});
