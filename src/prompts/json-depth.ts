/**
 * How deep a JSON text nests, found in one linear pass before it is parsed: a line of 100,000 `[`
 * parses, but everything that later walks the value (validation messages, String()) recurses once
 * per level and overflows the stack.
 */

/** Far deeper than any prompt line or manifest record (their values nest two levels at most). */
export const MAX_JSON_DEPTH = 32;

type Span = [number, number];

/**
 * Walks a JSON text once, outside its strings: `key` at each top-level key (the span of its quoted
 * text), `deeper` at each `[` or `{` (the depth reached, and the top-level key it sits under). A
 * visitor that returns true ends the walk.
 */
function walkJson(
  text: string,
  on: { key?: (key: Span) => boolean; deeper?: (depth: number, under: Span | null) => boolean },
): void {
  let depth = 0;
  let inString = false;
  let stringStart = -1;
  // The last string closed at depth 1 and whether a ':' followed it: that makes it the current key.
  let lastString: Span | null = null;
  let key: Span | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) {
        inString = false;
        if (depth === 1) lastString = [stringStart, i + 1];
      }
      continue;
    }
    if (c === 0x22) {
      inString = true;
      stringStart = i;
    } else if (c === 0x3a && depth === 1) {
      key = lastString;
      if (key !== null && on.key?.(key)) return;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (on.deeper?.(depth, key)) return;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 1 || depth === 0) lastString = null;
    } else if (c === 0x2c && depth === 1) {
      key = null;
    }
  }
}

/**
 * Null when `text` nests at most `max` levels; else the top-level key the too-deep value sits under
 * (null when it is not under a key), so the problem can name the field.
 */
export function tooDeepJson(text: string, max = MAX_JSON_DEPTH): { key: string | null } | null {
  let found: { key: string | null } | null = null;
  walkJson(text, {
    deeper: (depth, under) => {
      if (depth <= max) return false;
      found = { key: under === null ? null : keyText(text, under) };
      return true;
    },
  });
  return found;
}

/**
 * The first key a JSON object text gives twice at its top level, or null. JSON.parse keeps the last
 * silently: a line with two `seed`s would run with one the writer may not have meant.
 */
export function duplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let twice: string | null = null;
  walkJson(text, {
    key: (span) => {
      const key = keyText(text, span);
      if (seen.has(key)) twice = key;
      seen.add(key);
      return twice !== null;
    },
  });
  return twice;
}

function keyText(text: string, [start, end]: [number, number]): string {
  try {
    return String(JSON.parse(text.slice(start, end)));
  } catch {
    return text.slice(start + 1, end - 1);
  }
}

export function tooDeepMessage(max = MAX_JSON_DEPTH): string {
  return `nests deeper than ${max} levels of JSON arrays or objects`;
}
