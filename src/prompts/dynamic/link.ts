import { parseTemplate, TemplateError, type GroupNode, type Node } from './parse.js';
import type { WildcardStore } from './wildcards.js';

/**
 * A parsed template with its wildcards replaced by their lines (each line itself a parsed
 * template), so counting and expanding never touch the filesystem. A wildcard used many times
 * is linked once and shared.
 */
export type Linked = LinkedText | Alt;

export interface LinkedText {
  k: 'text';
  s: string;
}

/** Take from min to max distinct choices, joined by sep. A wildcard is an Alt taking one line. */
export interface Alt {
  k: 'alt';
  choices: { weight: number; seq: Linked[] }[];
  min: number;
  max: number;
  sep: string;
  /** Names the construct in messages: `the group at column 4`, `__colors__`. */
  label: string;
  /** Filled in once computed (a wildcard's Alt is shared by every use). */
  cache?: { count?: bigint; list?: readonly string[] };
}

/** A cycle is reported once, naming the whole chain, not wrapped in every file on it. */
class CycleError extends TemplateError {}

export class Linker {
  private readonly memo = new Map<string, Alt | TemplateError>();
  private readonly stack: string[] = [];

  constructor(private readonly store: WildcardStore) {}

  /** Links a sequence; throws TemplateError for a missing wildcard, a bad count or a cycle. */
  seq(nodes: Node[]): Linked[] {
    return nodes.map((n) => this.node(n));
  }

  private node(n: Node): Linked {
    if (n.t === 'text') return { k: 'text', s: n.s };
    if (n.t === 'wildcard') return this.wildcard(n.name);
    return this.group(n);
  }

  private group(g: GroupNode): Alt {
    const label = `the group at column ${g.column}`;
    const first = g.choices[0]!.seq;
    // `{2$$__colors__}` takes 2 of the wildcard's lines, not 2 of one choice.
    const fromWildcard = g.choices.length === 1 && first.length === 1 && first[0]!.t === 'wildcard';
    const choices = fromWildcard
      ? this.wildcard((first[0] as { name: string }).name).choices
      : g.choices.map((c) => ({ weight: c.weight, seq: this.seq(c.seq) }));
    const n = choices.length;
    const max = g.max ?? n;
    if (g.min > n || max > n) {
      const asked = g.min === max ? `${max}` : g.max === null ? `at least ${g.min}` : `up to ${max}`;
      throw new TemplateError(`${label} takes ${asked} distinct choices but has only ${n}`);
    }
    return { k: 'alt', choices, min: g.min, max, sep: g.sep, label };
  }

  private wildcard(name: string): Alt {
    const known = this.memo.get(name);
    if (known instanceof TemplateError) throw known;
    if (known) return known;
    if (this.stack.includes(name)) {
      const chain = [...this.stack.slice(this.stack.indexOf(name)), name].map((s) => `__${s}__`).join(' → ');
      throw new CycleError(`wildcards refer to each other in a cycle: ${chain}`);
    }
    this.stack.push(name);
    try {
      const choices = this.store.values(name).map((v) => {
        try {
          return { weight: 1, seq: this.seq(parseTemplate(v.text)) };
        } catch (err) {
          if (err instanceof CycleError || !(err instanceof TemplateError)) throw err;
          throw new TemplateError(`in __${name}__ (${v.where}): ${err.message}`);
        }
      });
      const alt: Alt = { k: 'alt', choices, min: 1, max: 1, sep: '', label: `__${name}__` };
      this.memo.set(name, alt);
      return alt;
    } catch (err) {
      if (err instanceof TemplateError) this.memo.set(name, err);
      throw err;
    } finally {
      this.stack.pop();
    }
  }
}
