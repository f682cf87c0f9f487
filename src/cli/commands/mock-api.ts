import type { Command } from 'commander';
import { createLogger } from '../../logger.js';
import { startMockApi } from '../../mock-api/server.js';
import { parseMockApiOptions } from '../../mock-api/cli-options.js';

export function mockApiCommand(program: Command): void {
  program
    .command('mock-api')
    .description('serve the built-in mock of the Stability API')
    .option('--port <n>', 'port (0 picks a free one)', '0')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--latency <ms>', 'latency per generation: MS or MIN-MAX')
    .option('--rate <count/seconds>', 'enforce a strict sliding-window rate limit')
    .option('--lockout <seconds>', 'lockout after a 429')
    .option('--retry-after', 'send Retry-After on 429')
    .option('--fail-rate <p>', 'answer this share of generations with 500 (deterministic)')
    .option('--balance <credits>', 'account balance (402 when it runs out)')
    .option('--api-key <key>', 'accept only this key (401 otherwise)')
    .option('--image-bytes <n>', 'pad placeholder images to about this size')
    .option('--log-level <level>', 'log level', 'info')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const logger = createLogger({ level: String(o.logLevel) });
      const opts = parseMockApiOptions(o as Record<string, string | undefined>);
      const mock = await startMockApi({ ...opts, host: String(o.host), port: Number(o.port) });
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
