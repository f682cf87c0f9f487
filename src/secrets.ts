/**
 * Redaction of secrets (the API key, a Redis password, a webhook token) from text that is stored
 * or shown. A secret is replaced whole, together with a `Bearer ` in front of it, and so is any run
 * of MIN_RUN or more of its consecutive characters: a key cut in half by a length limit, or echoed in
 * pieces, leaks no usable part. Shorter runs are left alone, so `sk-` or a common word stays readable.
 *
 * Redact before truncating: a cut made first can leave a piece shorter than MIN_RUN that no longer
 * looks like the secret, next to the rest of it.
 */

export const REDACTED = '[redacted]';

/** Runs of this many characters of a secret are redacted wherever they appear. */
export const MIN_RUN = 12;

/**
 * Shorter values are not treated as secrets: they cannot be told apart from ordinary words
 * (`mock`, `test`), and redacting every occurrence would garble the logs without protecting anything.
 */
export const MIN_SECRET = 8;

export type Redact = (text: string) => string;

const identity: Redact = (s) => s;
const BEARER_BEFORE = /bearer\s+$/i;

/** The spellings a secret takes in JSON lines and URLs, besides its own. */
function spellings(secret: string): string[] {
  const out = new Set([secret, JSON.stringify(secret).slice(1, -1)]);
  try {
    out.add(encodeURIComponent(secret));
  } catch {
    // A lone surrogate cannot be URL-encoded, so it never appears that way either.
  }
  return [...out];
}

/** Two characters folded into 16 bits: a filter (collisions are settled by the map lookup). */
const pairKey = (s: string, i: number): number => ((s.charCodeAt(i) << 7) ^ s.charCodeAt(i + 1)) & 0xffff;

interface RunIndex {
  forms: string[];
  /** Every MIN_RUN-character window of every form → where it starts (form, offset). */
  grams: Map<string, Array<[number, number]>>;
  /** The first two characters of every window, as pairKey bits: a cheap filter before slicing. */
  pairs: Uint8Array;
}

function buildRunIndex(forms: string[]): RunIndex {
  const grams = new Map<string, Array<[number, number]>>();
  const pairs = new Uint8Array(1 << 16);
  forms.forEach((form, f) => {
    for (let o = 0; o + MIN_RUN <= form.length; o++) {
      const g = form.slice(o, o + MIN_RUN);
      const at = grams.get(g);
      if (at) at.push([f, o]);
      else grams.set(g, [[f, o]]);
      pairs[pairKey(form, o)] = 1;
    }
  });
  return { forms, grams, pairs };
}

/** Length of the longest run of a form that starts at text[i], given the window there matched. */
function runLength(idx: RunIndex, text: string, i: number, hits: Array<[number, number]>): number {
  let best = MIN_RUN;
  for (const [f, o] of hits) {
    const form = idx.forms[f]!;
    let k = MIN_RUN;
    while (o + k < form.length && i + k < text.length && text.charCodeAt(i + k) === form.charCodeAt(o + k)) k++;
    if (k > best) best = k;
  }
  return best;
}

/** One left-to-right pass: linear in the text, a slice and a map lookup only where two characters match. */
function redactRuns(idx: RunIndex, text: string): string {
  const { pairs, grams } = idx;
  const end = text.length - MIN_RUN;
  let out = '';
  let last = 0;
  for (let i = 0; i <= end;) {
    if (pairs[pairKey(text, i)] !== 1) {
      i++;
      continue;
    }
    const hits = grams.get(text.slice(i, i + MIN_RUN));
    if (!hits) {
      i++;
      continue;
    }
    const len = runLength(idx, text, i, hits);
    const bearer = BEARER_BEFORE.exec(text.slice(Math.max(last, i - 16), i));
    out += text.slice(last, bearer ? i - bearer[0].length : i) + REDACTED;
    i += len;
    last = i;
  }
  return last === 0 ? text : out + text.slice(last);
}

/** `Bearer` in any case; the secrets themselves are matched exactly. */
const BEARER_WORD = '[Bb][Ee][Aa][Rr][Ee][Rr]';
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A function that removes every given secret from a text. Empty, missing and too-short values are
 * ignored, so callers can pass optional secrets as they are.
 */
export function createRedactor(secrets: ReadonlyArray<string | null | undefined>): Redact {
  const forms = [...new Set(secrets.flatMap((s) => (s && s.length >= MIN_SECRET ? spellings(s) : [])))];
  if (forms.length === 0) return identity;
  const long = forms.filter((f) => f.length >= MIN_RUN);
  const short = forms.filter((f) => f.length < MIN_RUN);
  const idx = long.length > 0 ? buildRunIndex(long) : undefined;
  // A secret shorter than a run is only recognisable whole.
  const exact =
    short.length > 0 ? new RegExp(`(?:${BEARER_WORD}\\s+)?(?:${short.map(escapeRegExp).join('|')})`, 'g') : null;
  // Nothing shorter than this can hold a run or a whole short secret.
  const shortest = Math.min(MIN_RUN, ...forms.map((f) => f.length));
  return (text) => {
    if (text.length < shortest) return text;
    let out = idx ? redactRuns(idx, text) : text;
    if (exact) out = out.replace(exact, REDACTED);
    return out;
  };
}

/**
 * The secret parts of a URL: its user and password, and a path or query that may carry a token
 * (chat webhooks put theirs there). Its origin is not secret and is what gets logged.
 */
export function urlSecrets(url: URL): string[] {
  const rest = `${url.pathname}${url.search}`;
  return [url.username, url.password, rest === '/' ? '' : rest].flatMap((s) => [s, safeDecode(s)]);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * URL-like text without anything up to its last "@", where a user and password would be (the
 * scheme is kept; without one, "…@" says something was left out): for text that may not parse, or
 * parses without a host (`redis:/pw@host`), where the end of the userinfo is a guess. Text without
 * an "@" is returned as it is.
 */
export function dropUserinfo(text: string): string {
  const at = text.lastIndexOf('@');
  if (at < 0) return text;
  // Only `scheme://` is a scheme for sure: in `user:pw@host` the "user:" is no scheme.
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text)?.[0];
  return `${scheme ?? '…@'}${text.slice(at + 1)}`;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what it escapes
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text for a terminal: control characters other than newline and tab (ESC starts sequences that
 * retitle a window or clear the screen; a file or an API may hold them) shown as `\u001b`.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
