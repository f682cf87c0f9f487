/**
 * v1 engines are legacy: Stability no longer documents them, and a retired engine answers 404 to
 * every request. Before a batch that uses one is enqueued, the API is asked which engines it
 * serves, and an engine it does not list is refused with the line that asks for it.
 */
import { PromptFileError, type PromptProblem } from '../errors.js';
import { creditsPerImage, type ModelId } from '../models.js';

/** The v2beta model suggested instead of a v1 engine the API no longer serves. */
const SUCCESSOR: ModelId = 'core';

/** The v1 engines the jobs `ns` use (`v1Jobs`: the engine of each job on one). */
export function v1EnginesOf(v1Jobs: ReadonlyMap<number, ModelId>, ns: Iterable<number>): Set<ModelId> {
  const out = new Set<ModelId>();
  if (v1Jobs.size === 0) return out;
  for (const n of ns) {
    const model = v1Jobs.get(n);
    if (model !== undefined) out.add(model);
  }
  return out;
}

/** Throws a PromptFileError naming every line (`lines`: by engine) that asks for an engine missing from `listed`. */
export function refuseUnlistedEngines(
  lines: ReadonlyMap<ModelId, ReadonlyArray<{ file: string; line: number }>>,
  used: ReadonlySet<ModelId>,
  listed: readonly string[],
): void {
  const missing = [...used].filter((m) => !listed.includes(m));
  if (missing.length === 0) return;
  const price = creditsPerImage(SUCCESSOR, {});
  const problems: PromptProblem[] = missing
    .flatMap((model) => (lines.get(model) ?? []).map((at) => ({ ...at, model })))
    .map(({ file, line, model }) => ({
      file,
      line,
      field: 'model',
      message:
        `the API does not list the v1 engine ${model} (it answers 404 once an engine is retired); ` +
        `use the v2beta model ${SUCCESSOR} instead (--model ${SUCCESSOR}, ${price} credits per image)`,
    }));
  throw new PromptFileError(problems);
}
