import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { countSeq } from './count.js';
import { combineSeq, sampleSeq, type Random } from './generate.js';
import { Linker, type Linked } from './link.js';
import { isPlain, parseTemplate, TemplateError } from './parse.js';
import { WildcardStore } from './wildcards.js';
import { UsageError } from '../../errors.js';

/** How prompt templates are expanded. Every field is optional. */
export interface ExpansionOptions {
  /**
   * The wildcards folder (`__name__` reads `name.txt` there). Default: `wildcards/` beside each
   * prompt file if it is a folder, else `prompts/wildcards/` beside it.
   */
  wildcardsDir?: string;
  /** `combinatorial` (default): every prompt a template makes. `random`: `count` prompts drawn by weight. */
  variants?: 'combinatorial' | 'random';
  /** Prompts drawn per line in random mode. Default 1. */
  count?: number;
  /** Seeds random mode (the batch name): the same key draws the same prompts. Default: empty. */
  seedKey?: string;
  /** Largest wildcard file accepted, in bytes. Default 50 MiB. */
  maxFileBytes?: number;
}

export interface Expansion {
  /** How many prompts `prompts()` yields (saturating at a huge cap, never Infinity). */
  count: bigint;
  prompts(): Iterable<string>;
}

export type ExpandResult = ({ ok: true } & Expansion) | { ok: false; message: string };

/** Expands one line's template; a syntax error, missing wildcard or cycle comes back as a message. */
export type Expand = (template: string) => ExpandResult;

const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
/** Draws per wanted prompt before random mode settles for fewer distinct prompts. */
const DRAWS_PER_PROMPT = 20;

/** One per load: wildcard files are read and linked once for all the files that share a folder. */
export function createExpander(opts: ExpansionOptions = {}): { forFile(file: string): Expand } {
  if (opts.count !== undefined && (!Number.isSafeInteger(opts.count) || opts.count < 1)) {
    throw new UsageError(`--count: ${opts.count} must be a whole number of at least 1`);
  }
  const linkers = new Map<string, Linker>();
  const linkerFor = (file: string): Linker => {
    const { dir, looked } = wildcardsDirFor(file, opts.wildcardsDir);
    const key = dir ?? `none:${looked.join('\0')}`;
    let l = linkers.get(key);
    if (!l) {
      l = new Linker(new WildcardStore(dir, looked, opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES));
      linkers.set(key, l);
    }
    return l;
  };
  return {
    forFile(file) {
      let linker: Linker | null = null;
      return (template) => {
        if (isPlain(template)) return { ok: true, count: 1n, prompts: () => [template] };
        try {
          const parsed = parseTemplate(template);
          linker ??= linkerFor(file);
          const seq = linker.seq(parsed);
          // Removing a choice can leave doubled or edge spaces ("a {b|} c"); a template without
          // choices is left exactly as written.
          const tidy = parsed.some((n) => n.t !== 'text') ? tidySpaces : (s: string) => s;
          return opts.variants === 'random'
            ? random(seq, template, tidy, opts)
            : { ok: true, count: countSeq(seq), prompts: () => map(combineSeq(seq), tidy) };
        } catch (err) {
          if (err instanceof TemplateError) return { ok: false, message: err.message };
          throw err;
        }
      };
    },
  };
}

function random(seq: Linked[], template: string, tidy: (s: string) => string, opts: ExpansionOptions): ExpandResult {
  const wanted = BigInt(opts.count ?? 1);
  const all = countSeq(seq);
  // A template that makes no more prompts than asked for gives them all, in order.
  if (all <= wanted) return { ok: true, count: all, prompts: () => map(combineSeq(seq), tidy) };
  const n = Number(wanted);
  return {
    ok: true,
    count: wanted,
    prompts: () => drawDistinct(seq, n, tidy, seededRandom(`${opts.seedKey ?? ''}\0${template}`)),
  };
}

/** Up to n distinct prompts; identical draws would only collapse into one job later. */
function* drawDistinct(seq: Linked[], n: number, tidy: (s: string) => string, rng: Random): Generator<string> {
  const seen = new Set<string>();
  for (let draws = 0; seen.size < n && draws < n * DRAWS_PER_PROMPT; draws++) {
    const p = tidy(sampleSeq(seq, rng));
    if (seen.has(p)) continue;
    seen.add(p);
    yield p;
  }
}

function* map(it: Iterable<string>, f: (s: string) => string): Generator<string> {
  for (const s of it) yield f(s);
}

function tidySpaces(s: string): string {
  // Most prompts need nothing: skip the regex (and the copy it makes) for them.
  if (!/^\s|\s$| {2}/.test(s)) return s;
  return s.replace(/ {2,}/g, ' ').trim();
}

/** sfc32 seeded from a hash of the key: small, fast, and the same on every machine. */
function seededRandom(key: string): Random {
  const h = createHash('sha256').update(key).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** The folder `__name__` resolves in for one prompt file, or null (with where it looked). */
function wildcardsDirFor(file: string, given: string | undefined): { dir: string | null; looked: string[] } {
  const candidates =
    given !== undefined ? [given] : ['wildcards', 'prompts/wildcards'].map((d) => path.join(path.dirname(file), d));
  for (const dir of candidates) {
    try {
      if (statSync(dir).isDirectory()) return { dir, looked: candidates };
    } catch {
      // not there: try the next
    }
  }
  return { dir: null, looked: candidates };
}
