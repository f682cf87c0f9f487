import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { quietSdkNodeNotice } from '../../src/config.js';

quietSdkNodeNotice();

/** The only credentials s3rver accepts. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

type S3rverClass = typeof import('s3rver');

/** s3rver, or why it cannot be loaded (the S3 tests then skip, saying so). */
export async function loadS3rver(): Promise<{ S3rver: S3rverClass } | { missing: string }> {
  try {
    const mod = (await import('s3rver')) as unknown as { default: S3rverClass };
    return { S3rver: mod.default };
  } catch (err) {
    return { missing: (err as Error).message };
  }
}

export interface TestS3 {
  /** http://127.0.0.1:PORT */
  url: string;
  /** A client of this server, for looking at what was written (not nightshift's own code). */
  client: S3Client;
  close(): Promise<void>;
}

/** A real S3-compatible server on loopback, storing under `dir`, with the buckets named. */
export async function startS3(S3rver: S3rverClass, o: { dir: string; buckets: string[] }): Promise<TestS3> {
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: o.dir,
    configureBuckets: o.buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run();
  const url = `http://127.0.0.1:${port}`;
  const client = testClient(url);
  return {
    url,
    client,
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}

export function testClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
}

/** Every object under `prefix`: key → size. */
export async function listAll(client: S3Client, bucket: string, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const c of page.Contents ?? []) out.set(c.Key!, c.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface FaultyProxy {
  url: string;
  /** PUTs the proxy answered 500 itself, and PUTs it passed on, by object path. */
  failed: string[];
  passed: string[];
  close(): Promise<void>;
}

/** Passes one request on to `upstream` unchanged and streams its answer back. */
export function forward(req: IncomingMessage, res: ServerResponse, upstream: URL): void {
  const fwd = request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  fwd.on('error', () => res.destroy());
  req.pipe(fwd);
}

/**
 * An HTTP proxy in front of the S3 server that answers every `every`-th PUT matching `match` with a
 * 500 (an S3 InternalError) after reading its body, and passes everything else on unchanged.
 */
export async function startFaultyProxy(target: string, o: { every: number; match: RegExp }): Promise<FaultyProxy> {
  const upstream = new URL(target);
  const failed: string[] = [];
  const passed: string[] = [];
  let matching = 0;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (req.method === 'PUT' && o.match.test(path)) {
      matching++;
      if (matching % o.every === 0) {
        failed.push(path);
        req.resume();
        req.on('end', () => {
          res.writeHead(500, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
        });
        return;
      }
      passed.push(path);
    }
    forward(req, res, upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    failed,
    passed,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
