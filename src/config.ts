import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isS3Url, parseS3Target, type S3Target } from './config/s3.js';
import { UsageError } from './errors.js';
import { isLoopbackHost, withoutUserinfo } from './config/urls.js';
import { dropUserinfo, urlSecrets } from './secrets.js';
import { checkName } from './names.js';
import { flagName, settingsFrom, sourceOf, type Env } from './config/resolve.js';
import { SETTINGS, type SettingDef, type SettingGetter, type SettingKey } from './config/settings.js';
import type { GenerationDefaults } from './prompts/types.js';
import type { RunWindow } from './queue/window.js';
import { clusterSecrets, clusterTarget, isClusterTarget, redactClusterNodes } from './redis/cluster.js';

/**
 * The only module that reads process.env. Commands pass their parsed flags in; every setting is
 * resolved flag → environment → default from one table (config/settings.ts).
 */

/** Flags as the command-line parser hands them over (strings, `true` for switches). */
export type Flags = Readonly<Record<string, unknown>>;
/**
 * Worker flags as an object, for callers that build a worker without the command line.
 * @public
 */
export type WorkerFlags = Record<string, string | boolean | undefined>;

export interface Config {
  /**
   * Null: none given; `run` then tries the default (127.0.0.1:6379) and finally a private redis-server.
   * With --redis-cluster, the cluster's target (`cluster:` + its nodes), which connects the same way.
   */
  redisUrl: string | null;
  /** `redisUrl` names a Redis Cluster: each queue's keys then get a hash tag of their own (see queuePrefix). */
  cluster: boolean;
  /** The Redis tried when none is given (tests point it elsewhere to exercise the fallback). */
  defaultRedisUrl: string;
  queue: string;
  /** Key prefix for BullMQ and our own keys; a {hash tag} so Redis Cluster keeps them in one slot. */
  prefix: string;
  /** The output folder; with `--out s3://…`, a local folder for what only this machine keeps (a private Redis). */
  out: string;
  /** `--out s3://BUCKET/PREFIX`: where images, sidecars, manifests and galleries go instead of `out`. */
  s3: S3Target | null;
  mock: boolean;
  logLevel: string;
  /** Print stack traces of unexpected errors. */
  debug: boolean;
  api: {
    /** Normalised: lower-case scheme and host, no default port, no trailing slash. */
    host: string;
    key: string | null;
    /** What jobs record as their API: `mock` or the normalised host. */
    identity: string;
    accept: 'image' | 'json';
    /** The key may go over plain http:// to a host other than this machine. */
    allowInsecure: boolean;
  };
  /** Values that must never reach a log, a file or Redis: the API key, passwords in URLs. */
  secrets: string[];
}

export interface WorkerConfig {
  /** Requests in flight: fixed, or where `--concurrency auto` starts. */
  concurrency: number;
  /** Follow the observed latency and the key's rate (bounded by maxConcurrency and memory). */
  autoConcurrency: boolean;
  maxConcurrency: number;
  rate: { count: number; windowMs: number };
  /** Null: the limiter's default, proportional to the window. */
  rateMarginMs: number | null;
  lockoutMs: number;
  requestTimeoutMs: number;
  timeoutRetries: number;
  /** Largest answer body read from the API. */
  maxResponseBytes: number;
  exitWhenIdle: boolean;
  logFile: string | null;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  backoffMs: number;
  breakerThreshold: number;
  probeIntervalMs: number;
  /** How long in-flight requests may take to finish after a stop signal. */
  graceMs: number;
  /** Restart consumption when jobs wait but nothing progressed for this long. */
  watchdogMs: number;
  /** Local hours during which jobs are taken; null: all day. */
  window: RunWindow | null;
  /** Port of the Prometheus endpoint on 127.0.0.1; null: none. */
  metricsPort: number | null;
}

export const MOCK_API_IDENTITY = 'mock';

/** The settings of one command, for the values the typed configs below do not cover. */
export function settingsOf(flags: Flags, env: Env = process.env): SettingGetter {
  return settingsFrom(flags, env);
}

/** Whether unexpected errors print their stack (NIGHTSHIFT_DEBUG); never throws, it runs while reporting one. */
export function debugEnabled(env: Env = process.env): boolean {
  try {
    return settingsFrom({}, env)('debug');
  } catch {
    return false;
  }
}

/** Mock runs get their own queue so placeholder jobs never mix with paid ones. */
function queueOf(flags: Flags, get: SettingGetter): string {
  const base = get('queue');
  return flags.queue === undefined && get('mock') ? `${base}-mock` : base;
}

export function loadConfig(flags: Flags, env: Env = process.env): Config {
  const get = settingsFrom(flags, env);
  const mock = get('mock');
  const queue = queueOf(flags, get);
  checkName(queue, '--queue', 'queue');
  // BullMQ keys a queue's jobs under `<prefix>:<queue>:…`, nightshift its own state under `<prefix>:ns:…`.
  if (queue === 'ns') throw new UsageError('--queue: "ns" is reserved for nightshift\'s own keys; pick another name');
  const prefix = get('prefix');
  if (!/^\{[^{}]+\}[^{}]*$/.test(prefix)) {
    throw new UsageError(`--prefix: "${prefix}" must start with a {hash tag}, e.g. {nightshift}`);
  }
  const host = get('apiHost');
  const key = get('apiKey')?.trim() || null;
  const redisUrl = redisTargetOf(get, flags, env);
  return {
    redisUrl,
    cluster: redisUrl !== null && isClusterTarget(redisUrl),
    defaultRedisUrl: get('defaultRedis'),
    queue,
    prefix,
    ...outputOf(get),
    mock,
    logLevel: get('logLevel'),
    debug: get('debug'),
    api: {
      host,
      key,
      identity: mock ? MOCK_API_IDENTITY : host,
      accept: get('accept'),
      allowInsecure: get('allowInsecureApi'),
    },
    secrets: secretsOf(
      key,
      [get('redis'), rawNotifyUrl(get), get('s3Endpoint')],
      clusterSecrets(get('redisCluster') ?? ''),
    ),
  };
}

/** One Redis or one cluster: both given is a usage error naming where each came from. */
function redisTargetOf(get: SettingGetter, flags: Flags, env: Env): string | null {
  const url = get('redis');
  const nodes = get('redisCluster');
  if (url !== undefined && nodes !== undefined) {
    throw new UsageError(
      `${sourceOf('redis', flags, env)} and ${sourceOf('redisCluster', flags, env)} both name a Redis: ` +
        'give --redis (REDIS_URL) for one server or --redis-cluster (REDIS_CLUSTER_NODES) for a cluster, not both',
    );
  }
  if (nodes !== undefined) return clusterTarget(nodes);
  return url ?? null;
}

/** `--out`: a folder, or an S3 prefix read with the SDK's standard environment. */
function outputOf(get: SettingGetter): { out: string; s3: S3Target | null } {
  const out = get('out');
  if (!isS3Url(out)) return { out: resolve(out), s3: null };
  const s3 = parseS3Target(out, { endpoint: get('s3Endpoint'), region: get('s3Region') });
  return { out: join(tmpdir(), 'nightshift-s3', s3.bucket, s3.prefix), s3 };
}

/** The notify URL for the secrets list; a bad one is reported by the command that sends to it. */
function rawNotifyUrl(get: SettingGetter): string | undefined {
  try {
    return get('notifyUrl')?.href;
  } catch {
    return undefined;
  }
}

/**
 * Where the key is sent: plain http:// only to this machine, unless the user says the network is
 * theirs. Returns a warning to log when it is allowed anyway.
 */
export function checkApiTransport(config: Config): string | null {
  const { host, key, allowInsecure } = config.api;
  if (config.mock || !key || !host.startsWith('http:') || isLoopbackHost(new URL(host).hostname)) return null;
  if (!allowInsecure) {
    throw new UsageError(
      `STABILITY_API_HOST: ${host} is plain http:// to another machine, which would send the API key unencrypted; ` +
        'use https://, or pass --allow-insecure-api if the network is yours',
    );
  }
  return `the API key goes unencrypted over plain http:// to ${host} (--allow-insecure-api)`;
}

/** The key and any password or token carried by a URL, longest first. */
function secretsOf(key: string | null, urls: Array<string | undefined | null>, more: string[] = []): string[] {
  const out = new Set<string>([...(key ? [key] : []), ...more]);
  for (const raw of urls) {
    if (!raw) continue;
    try {
      for (const s of urlSecrets(new URL(raw))) if (s) out.add(s);
    } catch {
      // Not a URL: nothing to extract.
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

export function loadWorkerConfig(flags: Flags, env: Env = process.env): WorkerConfig {
  const get = settingsFrom(flags, env);
  return {
    ...concurrencyOf(get),
    rate: get('rate'),
    rateMarginMs: get('rateMargin') ?? null,
    lockoutMs: get('lockout'),
    requestTimeoutMs: get('requestTimeout'),
    timeoutRetries: get('timeoutRetries'),
    maxResponseBytes: Math.round(get('maxResponseMb') * 1024 * 1024),
    exitWhenIdle: get('exitWhenIdle'),
    logFile: get('logFile') ?? null,
    lockDurationMs: get('lockDuration'),
    stalledIntervalMs: get('stalledInterval'),
    maxStalledCount: get('maxStalled'),
    backoffMs: get('backoff'),
    breakerThreshold: get('breakerThreshold'),
    probeIntervalMs: get('probeInterval'),
    graceMs: get('grace'),
    watchdogMs: get('watchdog'),
    window: get('window') ?? null,
    metricsPort: get('metricsPort') ?? null,
  };
}

/** Where auto starts: enough to learn the latency quickly, small enough not to flood the limiter. */
const AUTO_START = 16;

function concurrencyOf(get: SettingGetter): Pick<WorkerConfig, 'concurrency' | 'autoConcurrency' | 'maxConcurrency'> {
  const c = get('concurrency');
  const max = get('maxConcurrency');
  return c === 'auto'
    ? { concurrency: Math.min(AUTO_START, max), autoConcurrency: true, maxConcurrency: max }
    : { concurrency: c, autoConcurrency: false, maxConcurrency: Math.max(c, max) };
}

/** What `enqueue` (and `run`) take besides the common settings. */
export interface EnqueueConfig {
  batch: string | undefined;
  defaults: GenerationDefaults;
  maxCredits: number | undefined;
  maxJobs: number;
  dryRun: boolean;
  force: boolean;
  json: boolean;
  rate: { count: number; windowMs: number };
  /** For the estimate of whether the batch fits the night. */
  window: RunWindow | null;
  /** How prompt lines expand: the wildcards folder, every combination or a random draw. */
  expansion: { wildcardsDir?: string; variants: 'combinatorial' | 'random'; count?: number };
  /** Refuse what the pre-flight expects the API to reject. */
  strict: boolean;
}

export function loadEnqueueConfig(flags: Flags, env: Env = process.env): EnqueueConfig {
  const get = settingsFrom(flags, env);
  return {
    batch: get('batch'),
    defaults: generationDefaults(get),
    maxCredits: get('maxCredits'),
    maxJobs: get('maxJobs'),
    dryRun: get('dryRun'),
    force: get('force'),
    json: get('json'),
    rate: get('rate'),
    window: get('window') ?? null,
    expansion: expansionOf(get),
    strict: get('strict'),
  };
}

function expansionOf(get: SettingGetter): EnqueueConfig['expansion'] {
  const variants = get('variants');
  const count = get('count');
  if (count !== undefined && variants !== 'random') throw new UsageError('--count: only with --variants random');
  const dir = get('wildcards');
  return {
    variants,
    ...(count !== undefined ? { count } : {}),
    ...(dir !== undefined ? { wildcardsDir: resolve(dir) } : {}),
  };
}

/** Generation flags → defaults for every prompt line (a line's own values win). Ranges are checked per model later. */
function generationDefaults(get: SettingGetter): GenerationDefaults {
  const d: GenerationDefaults = {};
  const set = <K extends keyof GenerationDefaults>(k: K, v: GenerationDefaults[K] | undefined) => {
    if (v !== undefined) d[k] = v;
  };
  set('model', get('model'));
  set('negative_prompt', get('negative'));
  set('aspect_ratio', get('aspectRatio'));
  set('style_preset', get('stylePreset'));
  set('output_format', get('format'));
  set('width', get('width'));
  set('height', get('height'));
  set('steps', get('steps'));
  set('cfg_scale', get('cfgScale'));
  set('samples', get('samples'));
  set('seed', get('seed'));
  return d;
}

export interface SettingRow {
  key: SettingKey;
  /** The flag, else the environment variable, that sets it. */
  name: string;
  /** The resolved value (secrets: whether one is set). */
  value: unknown;
  /** How it prints: durations in seconds, secrets hidden. */
  shown: string;
  /** `--flag`, `env NAME` or `default`. */
  source: string;
}

const SECRET_SETTINGS: ReadonlySet<SettingKey> = new Set(['apiKey']);
const URL_SETTINGS: ReadonlySet<SettingKey> = new Set(['redis', 'defaultRedis', 'notifyUrl', 's3Endpoint']);

/** Each setting's value and where it came from, printable: no secret, no password, no webhook token. */
export function describeSettings(keys: readonly SettingKey[], flags: Flags, env: Env = process.env): SettingRow[] {
  const get = settingsFrom(flags, env);
  return keys.map((key) => {
    const source = sourceOf(key, flags, env);
    // The queue a command would use, as loadConfig works it out (with --mock its own).
    const raw: unknown = key === 'queue' ? queueOf(flags, get) : get(key);
    let value: unknown = raw;
    if (SECRET_SETTINGS.has(key)) value = raw === undefined ? null : '[set]';
    else if (URL_SETTINGS.has(key) && raw !== undefined) value = printableUrl(raw);
    else if (key === 'redisCluster' && typeof raw === 'string') value = redactClusterNodes(raw);
    const def = SETTINGS[key] as SettingDef<unknown>;
    const name = flagName(key) ?? def.env?.[0] ?? key;
    let shown = value === undefined ? '(unset)' : typeof value === 'string' ? value : JSON.stringify(value);
    if (def.unit === 'ms' && typeof value === 'number') shown = `${value / 1000} s`;
    return { key, name, value: value === undefined ? null : value, shown, source };
  });
}

function printableUrl(raw: unknown): string {
  try {
    const u = raw instanceof URL ? raw : new URL(String(raw));
    // A webhook's path carries its token: its origin is enough to tell which one.
    return raw instanceof URL ? `${u.origin}/…` : dropUserinfo(withoutUserinfo(u).replace(/\/$/, ''));
  } catch {
    return '<invalid URL>';
  }
}

/**
 * The pinned AWS SDK runs on Node 20, but warns at every start that later releases will not: a
 * notice about versions nightshift does not use. Turned off unless the user set the SDK's own switch.
 */
export function quietSdkNodeNotice(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
