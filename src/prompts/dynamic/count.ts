import { TemplateError } from './parse.js';
import type { Alt, Linked } from './link.js';

/**
 * How many prompts a template makes, without making them: exact as a BigInt (`{a|b}` 1100 times
 * is 2^1100, not Infinity), saturating at CAP so a hostile template cannot grow the numbers
 * without bound. Taking k of n choices whose own counts are c1…cn makes e_k(c1…cn) prompts (the
 * elementary symmetric polynomial), computed in O(n·k).
 */

/** Counts at or above this are reported as "more than" it. */
const CAP = 10n ** 300n;
/** Beyond this many steps of the O(n·k) sum, counting is refused rather than left to run for minutes. */
const MAX_COUNT_WORK = 2_000_000;

const sat = (x: bigint): bigint => (x > CAP ? CAP : x);

export function countSeq(nodes: readonly Linked[]): bigint {
  let n = 1n;
  for (const node of nodes) {
    if (node.k === 'alt') n = sat(n * countAlt(node));
  }
  return n;
}

function countAlt(alt: Alt): bigint {
  const known = alt.cache?.count;
  if (known !== undefined) return known;
  const counts = alt.choices.map((c) => countSeq(c.seq));
  if (counts.length * alt.max > MAX_COUNT_WORK) {
    throw new TemplateError(
      `${alt.label} takes up to ${alt.max} of ${counts.length} choices: too many combinations to count; narrow the range`,
    );
  }
  // e[j] after the loop = sum over j-subsets of the product of their counts.
  const e = new Array<bigint>(alt.max + 1).fill(0n);
  e[0] = 1n;
  for (const c of counts) {
    for (let j = alt.max; j >= 1; j--) e[j] = sat(e[j]! + e[j - 1]! * c);
  }
  let total = 0n;
  for (let k = alt.min; k <= alt.max; k++) total = sat(total + e[k]!);
  alt.cache = { ...alt.cache, count: total };
  return total;
}

/** `1001`, `about 1.4 × 10^331`, or `more than 10^300`: finite and readable. */
export function formatCount(n: bigint): string {
  if (n >= CAP) return `more than 10^${CAP.toString().length - 1}`;
  const digits = n.toString();
  if (digits.length <= 15) return digits;
  return `about ${digits[0]}.${digits[1]} × 10^${digits.length - 1}`;
}
