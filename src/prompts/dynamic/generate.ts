import type { Alt, Linked } from './link.js';

/**
 * Making prompts from a linked template, lazily: a consumer that stops after N prompts never
 * pays for the rest.
 *
 * Combinatorial order is nightshift's long-standing one: across a prompt the first group varies
 * slowest; taking k of n choices walks the k-subsets in order of the choices (a, b / a, c / b, c),
 * each subset once, since another order of the same choices would pay for the same picture twice.
 */

type Part = () => Iterator<string>;

/** Every prompt of a sequence. Iterative over the sequence, so a long prompt cannot overflow the stack. */
export function* combineSeq(nodes: readonly Linked[]): Generator<string> {
  yield* odometer(
    nodes.map((n) => (n.k === 'text' ? once(n.s) : () => combineAlt(n))),
    '',
  );
}

function once(s: string): Part {
  return () => [s][Symbol.iterator]();
}

function* combineAlt(alt: Alt): Generator<string> {
  for (let k = alt.min; k <= alt.max; k++) {
    for (const pick of subsets(alt.choices.length, k)) {
      yield* odometer(
        pick.map((i) => () => combineSeq(alt.choices[i]!.seq)),
        alt.sep,
      );
    }
  }
}

/** Every combination of one value per part, the last part varying fastest, joined by sep. */
function* odometer(parts: Part[], sep: string): Generator<string> {
  const n = parts.length;
  const its: Iterator<string>[] = [];
  const vals: string[] = [];
  for (let i = 0; i < n; i++) {
    its.push(parts[i]!());
    const r = its[i]!.next();
    if (r.done) return;
    vals.push(r.value);
  }
  for (;;) {
    yield vals.join(sep);
    let k = n - 1;
    for (; k >= 0; k--) {
      const r = its[k]!.next();
      if (!r.done) {
        vals[k] = r.value;
        break;
      }
    }
    if (k < 0) return;
    for (let j = k + 1; j < n; j++) {
      its[j] = parts[j]!();
      vals[j] = its[j]!.next().value as string;
    }
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
