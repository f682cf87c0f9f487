/**
 * How deep a JSON text nests, found in one linear pass before it is parsed: a line of 100,000 `[`
 * parses, but everything that later walks the value (validation messages, String()) recurses once
 * per level and overflows the stack.
 */

/** Far deeper than any prompt line or manifest record (their values nest two levels at most). */
export const MAX_JSON_DEPTH = 32;

/**
 * Null when `text` nests at most `max` levels; else the top-level key the too-deep value sits under
 * (null when it is not under a key), so the problem can name the field.
 */
export function tooDeepJson(text: string, max = MAX_JSON_DEPTH): { key: string | null } | null {
  let depth = 0;
  let inString = false;
  let stringStart = -1;
  // The last string closed at depth 1 and whether a ':' followed it: that makes it the current key.
  let lastString: [number, number] | null = null;
  let key: [number, number] | null = null;
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
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) return { key: key === null ? null : keyText(text, key) };
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 1 || depth === 0) lastString = null;
    } else if (c === 0x2c && depth === 1) {
      key = null;
    }
  }
  return null;
}

/**
 * The first key a JSON object text gives twice at its top level, or null. JSON.parse keeps the last
 * silently: a line with two `seed`s would run with one the writer may not have meant. One linear pass.
 */
export function duplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let inString = false;
  let stringStart = -1;
  let lastString: [number, number] | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) {
        inString = false;
        if (depth === 1) lastString = [stringStart, i + 1];
      }
      continue;
    }
    if (c === 0x22) {
      inString = true;
      stringStart = i;
    } else if (c === 0x3a && depth === 1 && lastString !== null) {
      const key = keyText(text, lastString);
      if (seen.has(key)) return key;
      seen.add(key);
      lastString = null;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      lastString = null;
    }
  }
  return null;
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
