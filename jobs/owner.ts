import type { JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';

/** The claim's owner: this worker and this job's lock, so a renewal or release never touches another's. */
export function ownerOf(deps: ProcessorDeps, ctx: JobContext): string {
  return `${deps.settings.workerId}:${ctx.token ?? ''}`;
}
