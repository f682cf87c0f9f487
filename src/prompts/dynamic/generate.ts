import { countSeq } from './count.js';
import type { Alt, Linked } from './link.js';

/**
 * Making prompts from a linked template, lazily: a consumer that stops after N prompts never
 * pays for the rest.
 *
 * Combinatorial order is nightshift's long-standing one: across a prompt the first group varies
 * slowest; taking k of n choices walks the k-subsets in order of the choices (a, b / a, c / b, c),
 * each subset once, since another order of the same choices would pay for the same picture twice.
 */

/** A fixed list (text, or a small group made once and kept), or a fresh iterator per use. */
type Part = readonly string[] | (() => Iterator<string>);

/** Groups making at most this many prompts are listed once: walking a list beats nested generators. */
const LISTED = 256n;

function partOf(n: Linked): Part {
  if (n.k === 'text') return [n.s];
  const known = n.cache?.list;
  if (known) return known;
  if (countSeq([n]) > LISTED) return () => combineAlt(n);
  const list = [...combineAlt(n)];
  n.cache = { ...n.cache, list };
  return list;
}

/** Every prompt of a sequence. Iterative over the sequence, so a long prompt cannot overflow the stack. */
export function* combineSeq(nodes: readonly Linked[]): Generator<string> {
  yield* odometer(nodes.map(partOf), '');
}

function* combineAlt(alt: Alt): Generator<string> {
  if (alt.min === 1 && alt.max === 1) {
    // The common `{a|b|c}`: one choice at a time, most of them plain text.
    for (const c of alt.choices) {
      if (c.seq.every((n) => n.k === 'text')) yield c.seq.map((n) => (n as { s: string }).s).join('');
      else yield* combineSeq(c.seq);
    }
    return;
  }
  for (let k = alt.min; k <= alt.max; k++) {
    for (const pick of subsets(alt.choices.length, k)) {
      yield* odometer(
        pick.map((i) => () => combineSeq(alt.choices[i]!.seq)),
        alt.sep,
      );
    }
  }
}

/** Walks one part: a list by index, an iterator as it comes. */
class Cursor {
  private i = 0;
  private it: Iterator<string> | null = null;
  value = '';
  constructor(private readonly part: Part) {}
  /** Starts over; false when the part has nothing. */
  reset(): boolean {
    this.i = 0;
    this.it = typeof this.part === 'function' ? this.part() : null;
    return this.next();
  }
  next(): boolean {
    if (this.it === null) {
      const list = this.part as readonly string[];
      if (this.i >= list.length) return false;
      this.value = list[this.i++]!;
      return true;
    }
    const r = this.it.next();
    if (r.done) return false;
    this.value = r.value;
    return true;
  }
}

/** Every combination of one value per part, the last part varying fastest, joined by sep. */
function* odometer(parts: Part[], sep: string): Generator<string> {
  const cursors = parts.map((p) => new Cursor(p));
  for (const c of cursors) if (!c.reset()) return;
  const n = cursors.length;
  for (;;) {
    let s = n > 0 ? cursors[0]!.value : '';
    for (let i = 1; i < n; i++) s += sep + cursors[i]!.value;
    yield s;
    let k = n - 1;
    while (k >= 0 && !cursors[k]!.next()) k--;
    if (k < 0) return;
    for (let j = k + 1; j < n; j++) cursors[j]!.reset();
  }
}

/** The k-subsets of 0…n-1 in lexicographic order. */
function* subsets(n: number, k: number): Generator<number[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  for (;;) {
    yield [...idx];
    let i = k - 1;
    while (i >= 0 && idx[i] === n - k + i) i--;
    if (i < 0) return;
    idx[i]!++;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1]! + 1;
  }
}

/** A random number in [0, 1). */
export type Random = () => number;

/** One prompt drawn at random: each group takes a count in its range, then distinct choices by weight. */
export function sampleSeq(nodes: readonly Linked[], rng: Random): string {
  let out = '';
  for (const n of nodes) out += n.k === 'text' ? n.s : sampleAlt(n, rng);
  return out;
}

function sampleAlt(alt: Alt, rng: Random): string {
  const k = alt.min + Math.floor(rng() * (alt.max - alt.min + 1));
  const pool = alt.choices.map((c, i) => ({ i, w: c.weight }));
  const picked: string[] = [];
  for (let t = 0; t < k; t++) {
    const total = pool.reduce((s, c) => s + c.w, 0);
    let at = 0;
    if (total > 0) {
      let r = rng() * total;
      while (at < pool.length - 1 && (r -= pool[at]!.w) >= 0) at++;
    } else {
      // Only zero weights left: they are all equally (un)likely.
      at = Math.floor(rng() * pool.length);
    }
    const [c] = pool.splice(at, 1);
    picked.push(sampleSeq(alt.choices[c!.i]!.seq, rng));
  }
  return picked.join(alt.sep);
}
