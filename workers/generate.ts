/**
 * Worker process entry point (docker-compose's `worker` service, supervisors):
 * the same as `nightshift work`, with its flags.
 */
import { main } from '../src/cli/main.js';

await main([process.argv[0]!, 'nightshift', 'work', ...process.argv.slice(2)]);
