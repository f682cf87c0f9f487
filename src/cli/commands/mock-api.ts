import type { Command } from 'commander';
import { settingsOf } from '../../config.js';
import { withSettings } from '../options.js';
import { createLogger } from '../../logger.js';
import { startMockApi } from '../../mock-api/server.js';
import { parseMockApiOptions } from '../../mock-api/cli-options.js';

export function mockApiCommand(program: Command): void {
  withSettings(program.command('mock-api').description('serve the built-in mock of the Stability API'), [
    'mockPort',
    'mockHost',
    'logLevel',
  ])
    .option('--latency <ms>', 'latency per generation: MS or MIN-MAX')
    .option('--rate <count/seconds>', 'enforce a strict sliding-window rate limit')
    .option('--lockout <seconds>', 'lockout after a 429')
    .option('--retry-after', 'send Retry-After on 429')
    .option('--fail-rate <p>', 'answer this share of generations with 500 (deterministic)')
    .option('--balance <credits>', 'account balance (402 when it runs out)')
    .option('--api-key <key>', 'accept only this key (401 otherwise)')
    .option('--image-bytes <n>', 'pad placeholder images to about this size')
    .option('--fault <name>', 'answer every generation with a hostile answer (echo-name, huge, png-garbage, …)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const get = settingsOf(o);
      const logger = createLogger({ level: get('logLevel') });
      const opts = parseMockApiOptions(o as Record<string, string | undefined>);
      const mock = await startMockApi({ ...opts, host: get('mockHost'), port: get('mockPort') });
      process.stdout.write(
        `mock Stability API listening on ${mock.url}\n` +
          `use it with: STABILITY_API_HOST=${mock.url} STABILITY_API_KEY=sk-test nightshift run FILE\n`,
      );
      logger.info({ url: mock.url }, 'mock API started');
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await mock.close();
    });
}
