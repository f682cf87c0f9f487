import type { FileHandle } from 'node:fs/promises';
import type { PromptProblem } from '../errors.js';
import { FileGrewError, readChunks, tooLargeMessage } from '../regular-file.js';

/**
 * A prompt file as lines, read a chunk at a time so a file of millions of lines never sits in memory
 * whole: strict UTF-8 (a bad byte is reported with its line), a leading BOM stripped, CRLF read as LF,
 * so every format counts lines the same way.
 */

export interface TextLine {
  /** 1-based. */
  n: number;
  text: string;
}

/** Lines in file order; a problem, when there is one, is the last event. */
export type LineEvent = { lines: TextLine[] } | { problem: PromptProblem };

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Bytes read per step: some thousands of lines, so a refused file costs little beyond its first lines. */
const LINE_CHUNK = 256 * 1024;

function fileProblem(file: string, message: string, line = 0): { problem: PromptProblem } {
  return { problem: { file, line, field: 'file', message } };
}

/**
 * The 1-based line (counted from `firstLine`) holding the first byte that is not UTF-8, or 0.
 * Splitting on 0x0A is safe: that byte never occurs inside a multi-byte UTF-8 sequence.
 */
function firstBadUtf8Line(bytes: Uint8Array, firstLine: number): number {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let start = 0;
  let line = firstLine;
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

function badUtf8(file: string, line: number): { problem: PromptProblem } {
  return fileProblem(
    file,
    `not valid UTF-8${line > 0 ? ` (first bad byte on line ${line})` : ''}; save the file as UTF-8`,
    line,
  );
}

/** Whether a line counts as content for the "file has no prompts" check (blank and `#` lines do not). */
function isContent(text: string): boolean {
  const t = text.trim();
  return t !== '' && !t.startsWith('#');
}

/**
 * Reads `fh` as lines. Each chunk is cut after its last newline and decoded at once (whole lines
 * only, so no character is ever split); the rest waits for the next chunk. Ends with a problem when
 * the file is not UTF-8, grows past `maxBytes`, or has no content line.
 */
export async function* readLines(file: string, fh: FileHandle, maxBytes: number): AsyncGenerator<LineEvent> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let carry: Buffer[] = [];
  let next = 1;
  let first = true;
  let content = false;
  let sawText = false;
  const decode = (bytes: Buffer): { lines: TextLine[] } | { problem: PromptProblem } => {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return badUtf8(file, firstBadUtf8Line(bytes, next));
    }
    const parts = text.split('\n');
    const lines = parts.map((t, i) => ({ n: next + i, text: t.endsWith('\r') ? t.slice(0, -1) : t }));
    next += parts.length;
    if (text.trim() !== '') sawText = true;
    if (!content) content = lines.some((l) => isContent(l.text));
    return { lines };
  };
  try {
    for await (let chunk of readChunks(fh, maxBytes, LINE_CHUNK)) {
      if (first) {
        first = false;
        if (chunk.subarray(0, 3).equals(BOM)) chunk = chunk.subarray(3);
      }
      const nl = chunk.lastIndexOf(0x0a);
      if (nl < 0) {
        carry.push(chunk);
        continue;
      }
      const whole = carry.length === 0 ? chunk.subarray(0, nl) : Buffer.concat([...carry, chunk.subarray(0, nl)]);
      carry = nl + 1 < chunk.length ? [chunk.subarray(nl + 1)] : [];
      const ev = decode(whole);
      yield ev;
      if ('problem' in ev) return;
    }
  } catch (err) {
    if (err instanceof FileGrewError) yield fileProblem(file, tooLargeMessage(err.bytes, maxBytes));
    else yield fileProblem(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return;
  }
  if (carry.length > 0) {
    const ev = decode(Buffer.concat(carry));
    yield ev;
    if ('problem' in ev) return;
  }
  if (!content)
    yield fileProblem(file, sawText ? 'file has no prompts (only blank and comment lines)' : 'file is empty');
}
