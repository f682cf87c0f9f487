import type { Command } from 'commander';
import { checkApiTransport, loadConfig, loadWorkerConfig } from '../../config.js';
import { createLogger } from '../../logger.js';
import { openApiTarget } from '../../stability/target.js';
import { startWorker } from '../../../workers/runtime.js';
import { connectRedis } from '../../redis/connect.js';
import { common, withSettings, worker } from '../options.js';
import { redisUrlOf } from '../../ops/context.js';
import { CLOSE_MS, onStopSignals } from '../signals.js';
import { settleWithin } from '../../timeouts.js';
import { openUserLogFile } from '../../output/safe-dirs.js';

export function workCommand(program: Command): void {
  const cmd = program
    .command('work')
    .description(
      'run a worker until SIGINT/SIGTERM: take jobs, call the API under the shared rate limit, write results',
    );
  withSettings(worker(common(cmd)), ['exitWhenIdle']).action(async (o: Record<string, unknown>) => {
    const config = loadConfig(o);
    const wc = loadWorkerConfig(o);
    const logger = createLogger({
      level: config.logLevel,
      files: wc.logFile ? [{ fd: openUserLogFile(wc.logFile) }] : [],
      secrets: config.secrets,
    });
    const insecure = checkApiTransport(config);
    if (insecure) logger.warn(insecure);
    const redisUrl = redisUrlOf(config);
    (await connectRedis(redisUrl)).disconnect(); // exit 3 now rather than retrying forever on a wrong URL
    const target = await openApiTarget(config, {
      requestTimeoutMs: wc.requestTimeoutMs,
      maxResponseBytes: wc.maxResponseBytes,
      logger,
    });
    const handle = await startWorker({ config, wc, redisUrl, logger, client: target.client, apiKey: target.apiKey });
    let killed = false;
    const off = onStopSignals(
      logger,
      () => void handle.stop(130),
      () => {
        killed = true;
        handle.kill(130);
      },
    );
    const code = await handle.done;
    off();
    // Closing the HTTP pool waits for requests still in flight: never after a second signal
    // (it must exit at once), and not beyond a moment after a grace period that ran out.
    if (!killed) await settleWithin(target.close(), CLOSE_MS);
    process.exitCode = code;
  });
}
