/**
 * Escaping for the gallery. Prompts and error messages are user and API text: every one of
 * them goes through here before it touches HTML.
 */
import escape from 'escape-html';

/** Safe in text and in quoted attribute values (escape-html covers & < > " '). */
export function escapeHtml(value: unknown): string {
  return escape(String(value ?? ''));
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>` and `&` become \u escapes
 * (still valid JSON) so no string can close the script element or open a comment.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
