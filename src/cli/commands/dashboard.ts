import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Command } from 'commander';
import type { Queue } from 'bullmq';
import { loadConfig, settingsOf } from '../../config.js';
import { openQueueContext, redisUrlOf } from '../../ops/context.js';
import { common, withSettings } from '../options.js';

/**
 * `nightshift dashboard`: bull-board over the queue, for watching a night's run in a
 * browser. Read-only unless --allow-actions (retry/clean/pause from a web page bypass the
 * CLI's checks), and bound to 127.0.0.1 unless --host says otherwise: it has no login.
 */

export interface DashboardOptions {
  queue: Queue;
  port: number;
  host: string;
  allowActions: boolean;
}

export async function startDashboard(opts: DashboardOptions): Promise<{ url: string; close(): Promise<void> }> {
  // Loaded here, not at the top: every other command would otherwise pay for express and bull-board.
  const [{ default: express }, { createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
    import('express'),
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/express'),
  ]);
  const adapter = new ExpressAdapter();
  adapter.setBasePath('/');
  createBullBoard({
    queues: [new BullMQAdapter(opts.queue, { readOnlyMode: !opts.allowActions, allowRetries: opts.allowActions })],
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'nightshift' } },
  });
  const app = express();
  app.disable('x-powered-by');
  app.use('/', adapter.getRouter());
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port, opts.host, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function dashboardCommand(program: Command): void {
  withSettings(
    common(
      program
        .command('dashboard')
        .description('serve a bull-board dashboard of the queue (read-only unless --allow-actions)'),
    ),
    ['dashboardPort', 'dashboardHost', 'allowActions'],
  ).action(async (o: Record<string, unknown>) => {
    const get = settingsOf(o);
    const port = get('dashboardPort');
    const allowActions = get('allowActions');
    const config = loadConfig(o);
    const ctx = await openQueueContext(config, redisUrlOf(config));
    const board = await startDashboard({ queue: ctx.queue, port, host: get('dashboardHost'), allowActions });
    process.stdout.write(`dashboard for queue ${config.queue}: ${board.url}${allowActions ? '' : ' (read-only)'}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await board.close();
    await ctx.close();
  });
}
