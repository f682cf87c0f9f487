import { formatProblem, type PromptProblem } from '../errors.js';
import { MODELS } from '../models.js';
import type { PromptSpec } from './types.js';

/**
 * The pre-flight: failures the API is known to answer for a valid-looking batch, found before a
 * credit is spent. `enqueue` and `run` print them as warnings, or refuse the batch when strict.
 * (Prompts over a model's length never get here: validation already refuses them.)
 */

export interface PreflightInput {
  /** The batch's specs, or (as enqueue streams them) the next chunk of them. */
  specs: readonly PromptSpec[];
  /** Jobs the batch makes (after samples and collapsing) up to the end of `specs`. */
  jobs: number;
}

/**
 * One check over the batch, or a chunk of it at a time (a finding repeated for later chunks is kept
 * once); each finding names a file and line (or `<command line>`, 0).
 */
export type PreflightCheck = (input: PreflightInput) => PromptProblem[];

/**
 * v2beta models accept English only and answer 422 `invalid_language` otherwise. English cannot be
 * told from French by looking, but a letter of a non-Latin script (Han, Cyrillic, Arabic, …) is a
 * sure sign: such a prompt is named, once per line.
 */
const englishOnly: PreflightCheck = ({ specs }) => {
  const found: PromptProblem[] = [];
  const seen = new Set<string>();
  for (const s of specs) {
    if (MODELS[s.model].family !== 'v2beta') continue;
    for (const [field, text] of [
      ['prompt', s.prompt],
      ['negative_prompt', s.negative_prompt],
    ] as const) {
      const script = text === null ? null : nonLatinScript(text);
      const key = `${s.source}\0${s.line}\0${field}`;
      if (script === null || seen.has(key)) continue;
      seen.add(key);
      found.push({
        file: s.source,
        line: s.line,
        field,
        message: `has ${script} text; model ${s.model} accepts English only (the API would answer 422 invalid_language)`,
      });
    }
  }
  return found;
};

/** The checks `enqueue` runs by default. A check that needs more (the run window's length) is added beside these. */
export const DEFAULT_CHECKS: readonly PreflightCheck[] = [englishOnly];

const SCRIPTS: readonly [string, RegExp][] = [
  ['Han (Chinese/Japanese)', /\p{Script=Han}/u],
  ['Hiragana/Katakana (Japanese)', /[\p{Script=Hiragana}\p{Script=Katakana}]/u],
  ['Hangul (Korean)', /\p{Script=Hangul}/u],
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Arabic', /\p{Script=Arabic}/u],
  ['Hebrew', /\p{Script=Hebrew}/u],
  ['Devanagari', /\p{Script=Devanagari}/u],
  ['Thai', /\p{Script=Thai}/u],
];
const OTHER_LETTER = /(?![\p{Script=Latin}\p{Script=Common}\p{Script=Inherited}])\p{L}/u;

/** The name of the first non-Latin script whose letters appear in `text`, or null. */
function nonLatinScript(text: string): string | null {
  if (!OTHER_LETTER.test(text)) return null;
  for (const [name, re] of SCRIPTS) if (re.test(text)) return name;
  return 'non-Latin';
}

export interface PreflightResult {
  problems: PromptProblem[];
  /** One line per problem, at most `maxShown`, then how many more. */
  warnings: string[];
}

/**
 * Runs the checks over specs at hand; the caller refuses the batch (strict) or prints the warnings.
 * @public
 */
export function runPreflight(
  input: PreflightInput,
  checks: readonly PreflightCheck[] = DEFAULT_CHECKS,
  maxShown = 20,
): PreflightResult {
  const problems = checks.flatMap((check) => check(input));
  return { problems, warnings: formatPreflight(problems, maxShown) };
}

/** One line per problem, at most `maxShown`, then how many more. */
export function formatPreflight(problems: readonly PromptProblem[], maxShown = 20): string[] {
  const warnings = problems.slice(0, maxShown).map(formatProblem);
  if (problems.length > maxShown) warnings.push(`… and ${problems.length - maxShown} more pre-flight warnings`);
  return warnings;
}
