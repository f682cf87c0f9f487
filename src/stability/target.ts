import type { Logger } from 'pino';
import { EnvironmentError } from '../errors.js';
import type { Config } from '../config.js';
import { createStabilityClient, type StabilityClient } from './client.js';
import { startMockApi, type MockApi } from '../mock-api/server.js';

export interface ApiTarget {
  client: StabilityClient;
  /** What the shared rate limit is keyed by (hashed before it reaches Redis). */
  apiKey: string;
  mock: MockApi | null;
  close(): Promise<void>;
}

export interface ApiTargetOptions {
  requestTimeoutMs: number;
  logger?: Logger;
  /** Largest response body read, in bytes (the client's default when unset). */
  maxResponseBytes?: number;
}

/**
 * The real API with STABILITY_API_KEY, or (--mock) the built-in fake served in-process
 * over real HTTP, so the whole pipeline runs the same way with no key and no money.
 */
export async function openApiTarget(config: Config, opts: ApiTargetOptions): Promise<ApiTarget> {
  const limits = {
    requestTimeoutMs: opts.requestTimeoutMs,
    accept: config.api.accept,
    ...(opts.maxResponseBytes !== undefined ? { maxResponseBytes: opts.maxResponseBytes } : {}),
    // The key, a Redis password, a webhook token: none may come back in an error the API sends.
    secrets: config.secrets,
  };
  if (config.mock) {
    const mock = await startMockApi({ latencyMs: [100, 400] });
    const client = createStabilityClient({ ...limits, baseUrl: mock.url, apiKey: 'mock' });
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await client.close().catch(() => {});
      opts.logger?.info(
        { requests: mock.stats.total, billedCredits: mock.stats.billedCredits },
        `mock API served ${mock.stats.total} requests`,
      );
      await mock.close();
    };
    return { client, apiKey: 'mock', mock, close };
  }
  if (!config.api.key) {
    throw new EnvironmentError(
      'STABILITY_API_KEY is not set: export your key (platform.stability.ai/account/keys), or add --mock to try the pipeline without one',
    );
  }
  const client = createStabilityClient({ ...limits, baseUrl: config.api.host, apiKey: config.api.key });
  return { client, apiKey: config.api.key, mock: null, close: () => client.close() };
}
