/**
 * v1 engines are legacy: Stability no longer documents them, and a retired engine answers 404 to
 * every request. Before a batch that uses one is enqueued, the API is asked which engines it
 * serves, and an engine it does not list is refused with the line that asks for it.
 */
import { PromptFileError, type PromptProblem } from '../errors.js';
import { MODELS, creditsPerImage, type ModelId } from '../models.js';
import type { PromptSpec } from '../prompts/types.js';
import type { JobIdentities } from './plan.js';

/** The v2beta model suggested instead of a v1 engine the API no longer serves. */
const SUCCESSOR: ModelId = 'core';

/** The v1 engines the jobs `ns` of `ident` use. */
export function v1EnginesOf(specs: PromptSpec[], ident: JobIdentities, ns: Iterable<number>): Set<ModelId> {
  const out = new Set<ModelId>();
  for (const n of ns) {
    const model = specs[ident.spec[n]!]!.model;
    if (MODELS[model].family === 'v1') out.add(model);
  }
  return out;
}

/** Throws a PromptFileError naming every line that asks for an engine missing from `listed`. */
export function refuseUnlistedEngines(
  specs: PromptSpec[],
  used: ReadonlySet<ModelId>,
  listed: readonly string[],
): void {
  const missing = new Set([...used].filter((m) => !listed.includes(m)));
  if (missing.size === 0) return;
  const price = creditsPerImage(SUCCESSOR, {});
  const problems: PromptProblem[] = specs
    .filter((s) => missing.has(s.model))
    .map((s) => ({
      file: s.source,
      line: s.line,
      field: 'model',
      message:
        `the API does not list the v1 engine ${s.model} (it answers 404 once an engine is retired); ` +
        `use the v2beta model ${SUCCESSOR} instead (--model ${SUCCESSOR}, ${price} credits per image)`,
    }));
  throw new PromptFileError(problems);
}
