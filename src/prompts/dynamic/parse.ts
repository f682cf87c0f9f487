/**
 * The Dynamic Prompts template syntax (as sd-dynamic-prompts and its Python `dynamicprompts`
 * library define it), parsed into a small tree. There is no maintained JavaScript port of that
 * library, and the part a batch needs (variants, ranges, joiners, weights, wildcards) is small
 * enough to own, so it is written here against the library's documented syntax.
 *
 * - `{a|b|c}` one of the choices; `{2$$a|b|c}` two distinct choices joined by `, `;
 *   `{1-2$$a|b|c}` a range (`{2-$$…}` up to all, `{-2$$…}` from 1); `{2$$ and $$a|b}` a joiner;
 *   `{0.5::a|b}` weights (used when sampling at random); choices nest: `{a|{b|c}}`.
 * - `__name__` a wildcard: one line of `name.txt` in the wildcards folder (`__a/b__`, `__a/*__`).
 * - `\{`, `\}` and `\|` are literal characters.
 *
 * Kept from nightshift's earlier `{a|b}` syntax so existing prompts keep their job ids: a brace pair
 * holding plain text and no `|` (`{word}`) stays literal, and `}` or `|` outside braces is text.
 */

/** A syntax error; the message says what and at which column. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

export type Node = TextNode | GroupNode | WildcardNode;

export interface TextNode {
  t: 'text';
  s: string;
}

export interface Choice {
  /** Relative weight, 1 unless `N::` gave one; only random sampling uses it. */
  weight: number;
  seq: Node[];
}

export interface GroupNode {
  t: 'group';
  choices: Choice[];
  /** How many distinct choices to take: from min to max (null: all of them). */
  min: number;
  max: number | null;
  /** Joins the taken choices when more than one is taken. */
  sep: string;
  /** True when the group opened with a `N$$` spec (`{2$$__w__}` then takes from the wildcard's lines). */
  spec: boolean;
  /** 1-based column of the `{`, for messages. */
  column: number;
}

export interface WildcardNode {
  t: 'wildcard';
  /** The name between the underscores: `colors/warm`, `colors/*`. */
  name: string;
}

const ESCAPABLE = new Set(['{', '}', '|']);
/** Deeper nesting than this is a mistake or an attack; recursion must not overflow the stack. */
const MAX_DEPTH = 64;
const DEFAULT_JOINER = ', ';
const WILDCARD = /__([\p{L}\p{N}\-./*][\p{L}\p{N}_\-./*]*?)__/uy;
const SPEC_AHEAD = /[^{}|]*?\$\$/y;
const BOUND = /(\d+)?(?:(-)(\d+)?)?\$\$/y;
const JOINER = /([^{}|$]*)\$\$/y;
const WEIGHT = /\s*(\d+(?:\.\d+)?|\.\d+)::/y;

/** True when the template uses none of the syntax: it is its own single prompt, unchanged. */
export function isPlain(template: string): boolean {
  return !template.includes('{') && !template.includes('\\') && !template.includes('__');
}

/** Parses a template; throws TemplateError on a syntax error. */
export function parseTemplate(template: string): Node[] {
  return new Parser(template).seq(0);
}

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  /** A sequence up to the end, or (inside a group) up to its `|` or `}`. */
  seq(depth: number): Node[] {
    const nodes: Node[] = [];
    // Text is gathered as slices joined once, not char by char (that would build string ropes).
    const parts: string[] = [];
    let from = this.i;
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === '\\' && ESCAPABLE.has(this.s[this.i + 1] ?? '')) {
        if (this.i > from) parts.push(this.s.slice(from, this.i));
        parts.push(this.s[this.i + 1]!);
        this.i += 2;
        from = this.i;
      } else if (depth > 0 && (c === '|' || c === '}')) {
        break;
      } else if (c === '{') {
        this.flush(nodes, parts, from);
        nodes.push(this.group(depth + 1));
        from = this.i;
      } else if (c === '_' && this.s[this.i + 1] === '_' && this.wildcardAhead()) {
        this.flush(nodes, parts, from);
        nodes.push(this.wildcard());
        from = this.i;
      } else {
        this.i++;
      }
    }
    this.flush(nodes, parts, from);
    return mergeText(nodes);
  }

  /** Ends a run of text at the current position: the pending pieces become one text node. */
  private flush(nodes: Node[], parts: string[], from: number): void {
    if (this.i > from) parts.push(this.s.slice(from, this.i));
    if (parts.length > 0) nodes.push({ t: 'text', s: parts.join('') });
    parts.length = 0;
  }

  private wildcardAhead(): boolean {
    WILDCARD.lastIndex = this.i;
    return WILDCARD.test(this.s);
  }

  private wildcard(): WildcardNode {
    WILDCARD.lastIndex = this.i;
    const m = WILDCARD.exec(this.s)!;
    this.i += m[0].length;
    return { t: 'wildcard', name: m[1]! };
  }

  private group(depth: number): Node {
    const column = this.i + 1;
    if (depth > MAX_DEPTH) throw new TemplateError(`braces nested deeper than ${MAX_DEPTH} levels at column ${column}`);
    this.i++;
    const spec = this.spec(column);
    const choices: Choice[] = [];
    let weighted = false;
    for (;;) {
      WEIGHT.lastIndex = this.i;
      const w = WEIGHT.exec(this.s);
      if (w) {
        weighted = true;
        this.i += w[0].length;
      }
      choices.push({ weight: w ? Number(w[1]) : 1, seq: this.seq(depth) });
      const c = this.s[this.i];
      if (c === undefined) throw new TemplateError(`unclosed "{" at column ${column} (write \\{ for a literal brace)`);
      this.i++;
      if (c === '}') break;
    }
    const only = choices[0]!.seq;
    if (!spec && !weighted && choices.length === 1 && only.every((n) => n.t === 'text')) {
      // `{word}`: literal, as it always was.
      return { t: 'text', s: `{${only.map((n) => (n as TextNode).s).join('')}}` };
    }
    return { t: 'group', choices, column, spec: spec !== null, ...(spec ?? { min: 1, max: 1, sep: DEFAULT_JOINER }) };
  }

  /** `N$$`, `N-M$$`, `N-$$`, `-M$$`, each optionally followed by `joiner$$`; null when the group has none. */
  private spec(column: number): { min: number; max: number | null; sep: string } | null {
    SPEC_AHEAD.lastIndex = this.i;
    if (!SPEC_AHEAD.test(this.s)) return null;
    BOUND.lastIndex = this.i;
    const b = BOUND.exec(this.s);
    if (!b || (b[1] === undefined && b[3] === undefined)) {
      const shown = this.s.slice(this.i, SPEC_AHEAD.lastIndex);
      throw new TemplateError(
        `bad "$$" spec "${shown}" in the group at column ${column}: use {N$$…}, {N-M$$…} or {N$$joiner$$…}`,
      );
    }
    this.i += b[0].length;
    const lo = b[1] === undefined ? 1 : Number(b[1]);
    const hi = b[2] === undefined ? lo : b[3] === undefined ? null : Number(b[3]);
    if (hi !== null && hi < lo)
      throw new TemplateError(`range ${lo}-${hi} is backwards in the group at column ${column}`);
    JOINER.lastIndex = this.i;
    const j = JOINER.exec(this.s);
    if (j) this.i += j[0].length;
    return { min: lo, max: hi, sep: j ? j[1]! : DEFAULT_JOINER };
  }
}

/** A literal `{word}` between two texts leaves adjacent text nodes: one is simpler to walk. */
function mergeText(nodes: Node[]): Node[] {
  const out: Node[] = [];
  for (const n of nodes) {
    const last = out[out.length - 1];
    if (n.t === 'text' && last?.t === 'text') out[out.length - 1] = { t: 'text', s: last.s + n.s };
    else out.push(n);
  }
  return out;
}
