import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { Command } from 'commander';
import type { Queue } from 'bullmq';
import { loadConfig, settingsOf } from '../../config.js';
import { EnvironmentError } from '../../errors.js';
import { openQueueContext, redisUrlOf } from '../../ops/context.js';
import { common, withSettings } from '../options.js';

/**
 * `nightshift dashboard`: bull-board over the queue, for watching a night's run in a
 * browser. Read-only unless --allow-actions (retry/clean/pause from a web page bypass the
 * CLI's checks), and bound to 127.0.0.1 unless --host says otherwise: it has no login.
 *
 * Having no login, it trusts no web page: it answers only requests addressed to its own names
 * (a DNS-rebinding page reaches 127.0.0.1 under its own host name), and changes state only for
 * requests from its own origin (any other site can make a browser POST to localhost).
 */

export interface DashboardOptions {
  queue: Queue;
  port: number;
  host: string;
  allowActions: boolean;
  /** More host names the dashboard answers to (a DNS name of this machine), besides its address and localhost. */
  allowedHosts?: readonly string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

function bracket(h: string): string {
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/** The Host headers a browser sends to reach this server: `name:port` (bare name too on port 80). */
function allowedHostHeaders(bound: { host: string; port: number }, extra: readonly string[] = []): Set<string> {
  const names = new Set(['localhost', bound.host.toLowerCase(), ...extra.map((h) => h.toLowerCase())]);
  if (WILDCARDS.has(bound.host)) {
    // Bound to every interface: the machine's own addresses and name are its names.
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address);
  }
  const out = new Set<string>();
  for (const n of names) {
    out.add(`${bracket(n)}:${bound.port}`);
    if (bound.port === 80) out.add(bracket(n));
  }
  return out;
}

function refuse(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${message}\n`);
}

/**
 * The checks every request passes before bull-board sees it: a Host header naming this server
 * (else 421), and for anything but GET/HEAD/OPTIONS an Origin header of this server's own page
 * (else 403). Returns true when the request may go on.
 */
function guardRequest(req: IncomingMessage, res: ServerResponse, allowed: ReadonlySet<string>): boolean {
  const host = (req.headers.host ?? '').toLowerCase();
  if (!allowed.has(host)) {
    refuse(res, 421, 'misdirected request: this dashboard answers only to its own address and localhost');
    return false;
  }
  if (SAFE_METHODS.has(req.method ?? 'GET')) return true;
  const origin = req.headers.origin?.toLowerCase();
  const site = req.headers['sec-fetch-site'];
  if (origin !== `http://${host}` || (site !== undefined && site !== 'same-origin')) {
    refuse(res, 403, 'forbidden: state-changing requests are accepted only from the dashboard page itself');
    return false;
  }
  return true;
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): EnvironmentError {
  const where = `${bracket(host)}:${port}`;
  const why =
    err.code === 'EADDRINUSE'
      ? `port ${port} is in use (pick another with --port)`
      : err.code === 'EADDRNOTAVAIL'
        ? `${host} is not an address of this machine`
        : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
          ? `${host} does not resolve to an address`
          : err.code === 'EACCES'
            ? `not allowed to listen on port ${port} (ports below 1024 need privileges)`
            : err.message;
  return new EnvironmentError(`the dashboard cannot listen on ${where}: ${why}`, { cause: err });
}

async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
    server.listen(port, host, () => resolve());
  });
  return server.address() as AddressInfo;
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
  let allowed: ReadonlySet<string> = new Set();
  app.use((req, res, next) => {
    if (guardRequest(req, res, allowed)) next();
  });
  app.use('/', adapter.getRouter());
  const server = createServer(app);
  const addr = await listen(server, opts.host, opts.port);
  // Known only now when --port 0 asked for any free port.
  allowed = allowedHostHeaders({ host: opts.host, port: addr.port }, [addr.address, ...(opts.allowedHosts ?? [])]);
  const shown = WILDCARDS.has(opts.host) ? 'localhost' : bracket(addr.address);
  return {
    url: `http://${shown}:${addr.port}/`,
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
    let board: Awaited<ReturnType<typeof startDashboard>>;
    try {
      board = await startDashboard({ queue: ctx.queue, port, host: get('dashboardHost'), allowActions });
    } catch (err) {
      await ctx.close();
      throw err;
    }
    process.stdout.write(`dashboard for queue ${config.queue}: ${board.url}${allowActions ? '' : ' (read-only)'}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await board.close();
    await ctx.close();
  });
}
