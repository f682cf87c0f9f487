import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TemplateError } from './parse.js';

/**
 * Wildcard files: `__name__` takes the lines of `<dir>/name.txt`; `__a/b__` a nested path;
 * `__a/*__` every file of `a/` (`**` any depth), in path order. Blank lines and `#` comments are
 * skipped, and a line that appears twice is taken once (it would only make the same prompt twice).
 * Lines keep their file order: the order they were written is the order the batch is made in.
 *
 * Files are read synchronously, once each and cached: a batch reads a handful, and the per-line
 * expansion path stays free of awaits.
 */

export interface WildcardValue {
  text: string;
  /** `colors/warm.txt:3`, relative to the wildcards folder, for messages. */
  where: string;
}

/** Enough files for any real collection; a folder with more is a mistake (or the wrong folder). */
const MAX_FILES = 10_000;
const MAX_DEPTH = 16;

export class WildcardStore {
  private readonly files = new Map<string, WildcardValue[]>();
  private listing: string[] | null = null;

  /**
   * @param dir the wildcards folder, or null when there is none
   * @param looked the folders tried when there is none, for the message
   * @param maxFileBytes the largest wildcard file accepted
   */
  constructor(
    private readonly dir: string | null,
    private readonly looked: string[],
    private readonly maxFileBytes: number,
  ) {}

  /** The lines of every file `name` matches, in path order, each line once. Throws TemplateError. */
  values(name: string): WildcardValue[] {
    const segments = checkName(name);
    const dir = this.requireDir(name);
    const rels = name.includes('*') ? this.matching(segments) : [segments.join('/')];
    if (rels.length === 0) throw new TemplateError(`wildcard __${name}__ matches no file in ${dir}`);
    const seen = new Set<string>();
    const out: WildcardValue[] = [];
    for (const rel of rels) {
      for (const v of this.read(name, rel)) {
        if (seen.has(v.text)) continue;
        seen.add(v.text);
        out.push(v);
      }
    }
    if (out.length === 0) throw new TemplateError(`wildcard __${name}__ has no lines (only blank or # comment lines)`);
    return out;
  }

  private requireDir(name: string): string {
    if (this.dir !== null) return this.dir;
    throw new TemplateError(
      `wildcard __${name}__ needs a wildcards folder, and there is none (looked for ${this.looked.join(' and ')}); ` +
        'create one or pass --wildcards DIR',
    );
  }

  private read(name: string, rel: string): WildcardValue[] {
    const cached = this.files.get(rel);
    if (cached) return cached;
    const file = path.join(this.dir!, `${rel}.txt`);
    let bytes: Buffer;
    try {
      // stat follows a symlink: what must be a regular file is what it points to (not a FIFO or a device).
      const st = statSync(file);
      if (!st.isFile()) throw new TemplateError(`wildcard __${name}__: ${file} is not a regular file`);
      if (st.size > this.maxFileBytes) {
        throw new TemplateError(`wildcard __${name}__: ${file} is larger than ${this.maxFileBytes} bytes`);
      }
      bytes = readFileSync(file);
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new TemplateError(
        code === 'ENOENT'
          ? `wildcard __${name}__ not found: no ${rel}.txt in ${this.dir}`
          : `wildcard __${name}__: cannot read ${file} (${code ?? String(err)})`,
      );
    }
    const values = parseLines(name, rel, bytes, this.maxFileBytes);
    this.files.set(rel, values);
    return values;
  }

  /** Relative paths (no `.txt`) of the files a glob matches, sorted. */
  private matching(segments: string[]): string[] {
    const re = globToRegExp(segments);
    return this.list().filter((rel) => re.test(rel));
  }

  private list(): string[] {
    if (this.listing) return this.listing;
    const found: string[] = [];
    const walk = (abs: string, rel: string, depth: number): void => {
      if (depth > MAX_DEPTH) return;
      let entries;
      try {
        entries = readdirSync(abs, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (found.length >= MAX_FILES) {
          throw new TemplateError(`the wildcards folder ${this.dir} holds more than ${MAX_FILES} files`);
        }
        const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
        // Symlinked folders are not walked: a link back up would never end.
        if (e.isDirectory()) walk(path.join(abs, e.name), childRel, depth + 1);
        else if ((e.isFile() || e.isSymbolicLink()) && e.name.endsWith('.txt')) found.push(childRel.slice(0, -4));
      }
    };
    walk(this.dir!, '', 0);
    this.listing = found.sort();
    return this.listing;
  }
}

/** Splits a name into path segments; a name that could leave the folder is refused. */
function checkName(name: string): string[] {
  const segments = name.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || (s.includes('**') && s !== '**')) {
      throw new TemplateError(`wildcard __${name}__ is not a valid name (path segments may not be empty, . or ..)`);
    }
  }
  return segments;
}

function globToRegExp(segments: string[]): RegExp {
  const last = segments.length - 1;
  const src = segments
    .map((seg, i) => {
      if (seg === '**') return i === last ? '.+' : '(?:[^/]+/)*';
      const body = seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
      return i === last ? body : `${body}/`;
    })
    .join('');
  return new RegExp(`^${src}$`, 'u');
}

function parseLines(name: string, rel: string, bytes: Buffer, maxFileBytes: number): WildcardValue[] {
  if (bytes.length > maxFileBytes) {
    throw new TemplateError(`wildcard __${name}__: ${rel}.txt is larger than ${maxFileBytes} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TemplateError(`wildcard __${name}__: ${rel}.txt is not valid UTF-8; save it as UTF-8`);
  }
  const values: WildcardValue[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    values.push({ text: line, where: `${rel}.txt:${i + 1}` });
  });
  return values;
}
