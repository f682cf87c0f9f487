import { readFile, stat } from 'node:fs/promises';
import type { PromptProblem } from '../errors.js';

/** Largest prompt file accepted, in bytes (50 MiB): far beyond any real prompt list, small enough to hold in memory. */
export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;

export type ReadResult = { ok: true; text: string } | { ok: false; problem: PromptProblem };

function fileProblem(file: string, message: string, line = 0): ReadResult {
  return { ok: false, problem: { file, line, field: 'file', message } };
}

function fsMessage(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  return `cannot be read (${code ?? (err instanceof Error ? err.message : String(err))})`;
}

function size(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;
}

/**
 * Finds the 1-based line holding the first byte that is not UTF-8. Splitting on 0x0A is safe:
 * that byte never occurs inside a multi-byte UTF-8 sequence.
 */
export function firstBadUtf8Line(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  let line = 1;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    start = end + 1;
    line++;
  }
  return 0;
}

/**
 * Decodes a prompt file's bytes: strict UTF-8, BOM stripped, CRLF turned into LF so every
 * parser counts lines the same way. Returns a problem when the text is unusable.
 */
export function decodePromptBytes(file: string, bytes: Uint8Array): ReadResult {
  let text: string;
  try {
    // ignoreBOM: false (the default) strips a leading UTF-8 BOM.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const line = firstBadUtf8Line(bytes);
    return fileProblem(
      file,
      `not valid UTF-8${line > 0 ? ` (first bad byte on line ${line})` : ''}; save the file as UTF-8`,
      line,
    );
  }
  text = text.replace(/\r\n/g, '\n');
  const hasContent = text.split('\n').some((l) => {
    const t = l.trim();
    return t !== '' && !t.startsWith('#');
  });
  if (!hasContent) {
    return fileProblem(
      file,
      text.trim() === '' ? 'file is empty' : 'file has no prompts (only blank and comment lines)',
    );
  }
  return { ok: true, text };
}

/** Reads a prompt file as text, or says clearly why it cannot be used (line 0, field "file"). */
export async function readPromptFile(file: string, maxBytes: number = DEFAULT_MAX_FILE_BYTES): Promise<ReadResult> {
  let bytes: Buffer;
  try {
    // stat first so an oversized file is refused without reading it into memory.
    const st = await stat(file);
    if (st.isDirectory()) return fileProblem(file, 'is a directory, not a file');
    if (st.size > maxBytes)
      return fileProblem(file, `file is too large (${size(st.size)}; the limit is ${size(maxBytes)})`);
    bytes = await readFile(file);
  } catch (err) {
    return fileProblem(file, fsMessage(err));
  }
  // A file can grow between stat and read, and special files report size 0.
  if (bytes.length > maxBytes)
    return fileProblem(file, `file is too large (${size(bytes.length)}; the limit is ${size(maxBytes)})`);
  return decodePromptBytes(file, bytes);
}
