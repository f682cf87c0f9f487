/**
 * Every setting nightshift has, in one table: its flag, its environment variables, its default and
 * how its text is read. Commands declare which settings they take; the command-line parser gets no
 * defaults of its own (they would hide the environment), and `resolveSetting` layers
 * flag → environment → default for every command the same way.
 */
import {
  API_RATE_LIMIT,
  ASPECT_RATIOS,
  MODEL_IDS,
  OUTPUT_FORMATS,
  SAMPLES_MAX,
  SEED_MAX,
  STYLE_PRESETS,
} from '../models.js';
import {
  parseChoice,
  parseDecimal,
  parseInteger,
  parsePort,
  parseRate,
  parseSeconds,
  parseSwitch,
  parseText,
} from './parse.js';
import { normalizeApiHost, parseNotifyUrl } from './urls.js';
import { parseWindow } from '../queue/window.js';
import { parseClusterSetting } from '../redis/cluster.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface SettingDef<T> {
  /** Commander flag spelling, e.g. `--rate <count/seconds>`; absent: the environment alone sets it. */
  flag?: string;
  /** Environment variables, the first one set wins. */
  env?: readonly string[];
  /** For --help; the environment variable and the default are appended. */
  help: string;
  /** Reads the raw text; `name` is the flag or variable it came from, for the error message. */
  parse: (raw: string, name: string) => T;
  /** Used when neither the flag nor the environment gives a value; may depend on other settings. */
  default: T | ((get: LooseGetter) => T);
  /** Shown in --help as the default, when the default is computed. */
  defaultText?: string;
  /** Kept out of --help: tuning knobs and test hooks. */
  hidden?: boolean;
  /** A flag without a value. */
  isSwitch?: boolean;
  /** The parsed value's unit when it is not the text's: durations are given in seconds, held in milliseconds. */
  unit?: 'ms';
}

export type SettingGetter = <K extends SettingKey>(key: K) => SettingValue<K>;
/** What a computed default sees (typed loosely: the table cannot name its own keys while it is defined). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type LooseGetter = (key: string) => any;

const def = <T>(d: SettingDef<T>): SettingDef<T> => d;
const seconds =
  (min = 0) =>
  (raw: string, name: string) =>
    parseSeconds(raw, name, min);
const int = (min: number, max?: number) => (raw: string, name: string) =>
  parseInteger(raw, name, max === undefined ? { min } : { min, max });
const optional = <T>(parse: (raw: string, name: string) => T) => parse as (raw: string, name: string) => T | undefined;

export const SETTINGS = {
  // Every command
  redis: def({
    flag: '--redis <url>',
    env: ['REDIS_URL'],
    help: 'Redis URL',
    parse: optional(parseText),
    default: undefined,
    defaultText: 'redis://127.0.0.1:6379',
  }),
  redisCluster: def({
    flag: '--redis-cluster <nodes>',
    env: ['REDIS_CLUSTER_NODES'],
    help: 'Redis Cluster seed nodes, HOST:PORT[,HOST:PORT…] or redis://[:PASSWORD@]HOST:PORT,… (not with --redis)',
    parse: optional(parseClusterSetting),
    default: undefined,
  }),
  queue: def({
    flag: '--queue <name>',
    env: ['NIGHTSHIFT_QUEUE'],
    help: 'queue name (nightshift-mock with --mock)',
    parse: parseText,
    default: 'nightshift',
  }),
  out: def({
    flag: '--out <dir>',
    env: ['NIGHTSHIFT_OUT'],
    help: 'output folder, or s3://BUCKET/PREFIX for S3-compatible storage',
    parse: parseText,
    default: './out',
  }),
  s3Endpoint: def({
    env: ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'],
    help: 'S3 endpoint for --out s3://… (another S3-compatible store)',
    parse: optional(parseText),
    default: undefined,
    defaultText: "the SDK's endpoint for the region",
  }),
  s3Region: def({
    env: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
    help: 'S3 region for --out s3://…',
    parse: parseText,
    default: 'us-east-1',
  }),
  mock: def({
    flag: '--mock',
    help: 'use the built-in mock of the Stability API (no key, no cost)',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  logLevel: def({
    flag: '--log-level <level>',
    env: ['NIGHTSHIFT_LOG_LEVEL'],
    help: LOG_LEVELS.join(', '),
    parse: parseChoice(LOG_LEVELS),
    default: 'info',
  }),
  prefix: def({
    flag: '--prefix <prefix>',
    env: ['NIGHTSHIFT_PREFIX'],
    help: 'Redis key prefix, a {hash tag}',
    parse: parseText,
    default: '{nightshift}',
    hidden: true,
  }),
  defaultRedis: def({
    env: ['NIGHTSHIFT_DEFAULT_REDIS'],
    help: 'the Redis tried when none is given',
    parse: parseText,
    default: 'redis://127.0.0.1:6379',
    hidden: true,
  }),
  debug: def({
    env: ['NIGHTSHIFT_DEBUG'],
    help: 'print stack traces of unexpected errors',
    parse: parseSwitch,
    default: false,
    hidden: true,
  }),

  // The API
  apiKey: def({
    env: ['STABILITY_API_KEY'],
    help: 'the Stability API key (required unless --mock)',
    parse: optional(parseText),
    default: undefined,
  }),
  apiHost: def({
    env: ['STABILITY_API_HOST', 'API_HOST'],
    help: 'the Stability API host',
    parse: normalizeApiHost,
    default: 'https://api.stability.ai',
  }),
  accept: def({
    env: ['NIGHTSHIFT_ACCEPT'],
    help: 'v2beta answer format',
    parse: parseChoice(['image', 'json'] as const),
    default: 'image' as const,
    hidden: true,
  }),
  allowInsecureApi: def({
    flag: '--allow-insecure-api',
    help: 'send the key over plain http:// to a host other than this machine',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),

  // enqueue and run: the batch and generation defaults for every line
  batch: def({
    flag: '--batch <name>',
    help: "batch name (default: the first file's base name)",
    parse: optional(parseText),
    default: undefined,
  }),
  model: def({
    flag: '--model <model>',
    help: MODEL_IDS.join(', '),
    parse: optional(parseChoice(MODEL_IDS)),
    default: undefined,
    defaultText: 'core',
  }),
  negative: def({
    flag: '--negative <text>',
    help: 'negative prompt',
    parse: optional((raw: string) => raw),
    default: undefined,
  }),
  aspectRatio: def({
    flag: '--aspect-ratio <ratio>',
    help: `aspect ratio (v2beta models): ${ASPECT_RATIOS.join(', ')}`,
    parse: optional(parseChoice(ASPECT_RATIOS)),
    default: undefined,
  }),
  width: def({ flag: '--width <px>', help: 'width (v1 engines)', parse: optional(int(1)), default: undefined }),
  height: def({ flag: '--height <px>', help: 'height (v1 engines)', parse: optional(int(1)), default: undefined }),
  steps: def({ flag: '--steps <n>', help: 'steps (v1 engines)', parse: optional(int(1)), default: undefined }),
  cfgScale: def({
    flag: '--cfg-scale <n>',
    help: 'CFG scale (v1 engines, sd3.5-*)',
    parse: optional((raw, name) => parseDecimal(raw, name)),
    default: undefined,
  }),
  stylePreset: def({
    flag: '--style-preset <preset>',
    help: STYLE_PRESETS.join(', '),
    parse: optional(parseChoice(STYLE_PRESETS)),
    default: undefined,
  }),
  format: def({
    flag: '--format <format>',
    help: `output format (v2beta models): ${OUTPUT_FORMATS.join(', ')}`,
    parse: optional(parseChoice(OUTPUT_FORMATS)),
    default: undefined,
  }),
  samples: def({
    flag: '--samples <n>',
    help: 'images per prompt (seeds seed, seed+1, …)',
    parse: optional(int(1, SAMPLES_MAX)),
    default: undefined,
  }),
  seed: def({
    flag: '--seed <n>',
    help: 'seed for every prompt without its own',
    parse: optional(int(0, SEED_MAX)),
    default: undefined,
  }),
  maxCredits: def({
    flag: '--max-credits <n>',
    help: "the batch's budget in credits",
    parse: optional((raw, name) => parseDecimal(raw, name, { min: 0 })),
    default: undefined,
  }),
  maxJobs: def({ flag: '--max-jobs <n>', help: 'refuse a batch larger than this', parse: int(1), default: 10000 }),
  wildcards: def({
    flag: '--wildcards <dir>',
    env: ['NIGHTSHIFT_WILDCARDS'],
    help: '__name__ reads name.txt from this folder',
    parse: optional(parseText),
    default: undefined,
    defaultText: 'wildcards/ or prompts/wildcards/ beside the prompt file',
  }),
  variants: def({
    flag: '--variants <mode>',
    help: 'combinatorial: every prompt a line makes; random: --count prompts drawn by weight',
    parse: parseChoice(['combinatorial', 'random'] as const),
    default: 'combinatorial' as const,
  }),
  count: def({
    flag: '--count <n>',
    help: 'prompts drawn per line with --variants random',
    parse: optional(int(1, 1_000_000)),
    default: undefined,
    defaultText: '1',
  }),
  strict: def({
    flag: '--strict',
    help: 'refuse prompts the pre-flight expects to fail at the API (e.g. non-English text for v2beta models)',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  dryRun: def({
    flag: '--dry-run',
    help: 'validate, expand and estimate; enqueue nothing',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  force: def({
    flag: '--force',
    help: 'enqueue even when the estimate exceeds the balance',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  json: def({ flag: '--json', help: 'print the result as JSON', parse: parseSwitch, default: false, isSwitch: true }),

  // work and run
  concurrency: def({
    flag: '--concurrency <n|auto>',
    env: ['NIGHTSHIFT_CONCURRENCY'],
    help: 'requests in flight per worker; auto follows the observed latency and the key’s rate',
    parse: (raw: string, name: string): number | 'auto' =>
      raw.trim() === 'auto' ? 'auto' : parseInteger(raw, name, { min: 1, max: 10000 }),
    default: 'auto' as number | 'auto',
  }),
  maxConcurrency: def({
    flag: '--max-concurrency <n>',
    env: ['NIGHTSHIFT_MAX_CONCURRENCY'],
    help: 'the most requests in flight per worker with --concurrency auto',
    parse: int(1, 10000),
    default: 256,
  }),
  rate: def({
    flag: '--rate <count/seconds>',
    env: ['NIGHTSHIFT_RATE'],
    help: 'the shared rate limit per API key',
    parse: parseRate,
    default: { ...API_RATE_LIMIT },
    defaultText: '150/10',
  }),
  rateMargin: def({
    flag: '--rate-margin <seconds>',
    help: 'safety margin added to the rate window',
    parse: optional(seconds()),
    unit: 'ms',
    default: undefined,
    defaultText: '2.5% of the window',
    hidden: true,
  }),
  lockout: def({
    flag: '--lockout <seconds>',
    env: ['NIGHTSHIFT_LOCKOUT'],
    help: 'pause after a 429 without Retry-After',
    parse: seconds(),
    unit: 'ms',
    default: 60_000,
    defaultText: '60',
  }),
  requestTimeout: def({
    flag: '--request-timeout <seconds>',
    env: ['NIGHTSHIFT_REQUEST_TIMEOUT'],
    help: 'give up on a request after this long',
    parse: seconds(0.01),
    unit: 'ms',
    default: 180_000,
    defaultText: '180',
  }),
  timeoutRetries: def({
    flag: '--timeout-retries <n>',
    help: 'retries of a request that timed out (it may have been billed)',
    parse: int(0, 100),
    default: 1,
  }),
  maxResponseMb: def({
    flag: '--max-response-mb <n>',
    env: ['NIGHTSHIFT_MAX_RESPONSE_MB'],
    help: 'largest answer read from the API; a larger one is a transient failure',
    parse: (raw, name) => parseDecimal(raw, name, { min: 1, max: 4096 }),
    default: 64,
  }),
  exitWhenIdle: def({
    flag: '--exit-when-idle',
    help: 'exit once nothing is active and nothing can be taken (4 when a 401/402 paused the queue)',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  logFile: def({
    flag: '--log-file <path>',
    help: 'also write JSON logs to this file',
    parse: optional(parseText),
    default: undefined,
  }),
  lockDuration: def({
    flag: '--lock-duration <seconds>',
    env: ['NIGHTSHIFT_LOCK_DURATION'],
    help: 'job lock; a killed worker’s jobs return after it',
    parse: seconds(0.1),
    unit: 'ms',
    default: 30_000,
    defaultText: '30',
    hidden: true,
  }),
  stalledInterval: def({
    flag: '--stalled-interval <seconds>',
    env: ['NIGHTSHIFT_STALLED_INTERVAL'],
    help: 'how often stalled jobs are looked for',
    parse: seconds(0.1),
    unit: 'ms',
    default: 30_000,
    defaultText: '30',
    hidden: true,
  }),
  // A few crashes or forced deploys must not fail a job (a stall failure skips retries).
  maxStalled: def({
    flag: '--max-stalled <n>',
    help: 'stalls before a job fails',
    parse: int(1, 1000),
    default: 5,
    hidden: true,
  }),
  backoff: def({
    flag: '--backoff <seconds>',
    env: ['NIGHTSHIFT_BACKOFF'],
    help: 'base of the exponential retry backoff',
    parse: seconds(),
    unit: 'ms',
    default: 5000,
    defaultText: '5',
    hidden: true,
  }),
  breakerThreshold: def({
    flag: '--breaker-threshold <n>',
    help: 'consecutive transient failures that pause the queue',
    parse: int(1, 1_000_000),
    default: 20,
    hidden: true,
  }),
  probeInterval: def({
    flag: '--probe-interval <seconds>',
    env: ['NIGHTSHIFT_PROBE_INTERVAL'],
    help: 'how often a paused circuit probes the API',
    parse: seconds(0.01),
    unit: 'ms',
    default: 60_000,
    defaultText: '60',
    hidden: true,
  }),
  grace: def({
    flag: '--grace <seconds>',
    help: 'how long in-flight requests may finish after a signal',
    parse: seconds(),
    unit: 'ms',
    default: (get) => get('requestTimeout') + 10_000,
    defaultText: 'request timeout + 10',
    hidden: true,
  }),
  watchdog: def({
    flag: '--watchdog <seconds>',
    env: ['NIGHTSHIFT_WATCHDOG'],
    help: 'restart consumption after this long without progress',
    parse: seconds(1),
    unit: 'ms',
    default: 600_000,
    defaultText: '600',
    hidden: true,
  }),

  metricsPort: def({
    flag: '--metrics-port <n>',
    env: ['NIGHTSHIFT_METRICS_PORT'],
    help: 'serve Prometheus metrics on 127.0.0.1:N/metrics (0 picks a free port)',
    parse: optional(parsePort),
    default: undefined,
  }),
  window: def({
    flag: '--window <start-end>',
    env: ['NIGHTSHIFT_WINDOW'],
    help: 'take jobs only between these local times, e.g. 22:00-07:00 (HH:MM or HH:MM:SS; may cross midnight)',
    parse: optional(parseWindow),
    default: undefined,
  }),

  // run
  exitAtWindowEnd: def({
    flag: '--exit-at-window-end',
    help: 'when the run window closes, exit 0 and leave the rest of the batch queued for the next one',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  notifyUrl: def({
    flag: '--notify-url <url>',
    env: ['NIGHTSHIFT_NOTIFY_URL'],
    help: 'POST the batch summary as JSON here when the run ends (failures are logged, never fatal)',
    parse: optional(parseNotifyUrl),
    default: undefined,
  }),
  progressInterval: def({
    env: ['NIGHTSHIFT_PROGRESS_INTERVAL'],
    help: 'seconds between progress lines when not on a terminal',
    parse: seconds(0.1),
    unit: 'ms',
    default: 60_000,
    defaultText: '60',
    hidden: true,
  }),

  // status
  watch: def({
    flag: '--watch',
    help: 'refresh every 2 seconds until interrupted',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),

  // retry
  errorClass: def({
    flag: '--class <class>',
    help: 'only failures of this error class (transient, timeout, budget, …)',
    parse: optional(parseText),
    default: undefined,
  }),

  // export
  exportFormat: def({
    flag: '--format <format>',
    help: 'imagefolder, webdataset or captions',
    parse: optional(parseChoice(['imagefolder', 'webdataset', 'captions'] as const)),
    default: undefined,
  }),
  exportTo: def({
    flag: '--to <dir>',
    help: 'the folder to export into (new, empty, or an earlier export of this batch)',
    parse: optional(parseText),
    default: undefined,
  }),
  includeFiltered: def({
    flag: '--include-filtered',
    help: 'also export filtered (blurred) images',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),
  shardSize: def({
    flag: '--shard-size <n>',
    help: 'samples per webdataset shard',
    parse: int(1, 10_000_000),
    default: 1000,
  }),

  // dashboard
  dashboardPort: def({ flag: '--port <n>', help: 'port to listen on', parse: parsePort, default: 3000 }),
  dashboardHost: def({
    flag: '--host <address>',
    help: 'address to bind (it has no login: keep it on loopback unless you put auth in front)',
    parse: parseText,
    default: '127.0.0.1',
  }),
  allowActions: def({
    flag: '--allow-actions',
    help: 'let the page retry, remove, promote and clean jobs',
    parse: parseSwitch,
    default: false,
    isSwitch: true,
  }),

  // mock-api
  mockPort: def({ flag: '--port <n>', help: 'port (0 picks a free one)', parse: parsePort, default: 0 }),
  mockHost: def({ flag: '--host <host>', help: 'address to bind', parse: parseText, default: '127.0.0.1' }),
} satisfies Record<string, SettingDef<unknown>>;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K] extends SettingDef<infer T> ? T : never;

/** The settings each group of commands takes (their flags; environment-only settings need no listing). */
export const COMMON_SETTINGS = [
  'redis',
  'redisCluster',
  'queue',
  'out',
  'mock',
  'logLevel',
  'prefix',
] as const satisfies readonly SettingKey[];
export const GENERATION_SETTINGS = [
  'batch',
  'model',
  'negative',
  'aspectRatio',
  'width',
  'height',
  'steps',
  'cfgScale',
  'stylePreset',
  'format',
  'samples',
  'seed',
  'maxCredits',
  'maxJobs',
  'wildcards',
  'variants',
  'count',
  'strict',
  'dryRun',
  'force',
  'json',
  'allowInsecureApi',
] as const satisfies readonly SettingKey[];
export const WORKER_SETTINGS = [
  'concurrency',
  'maxConcurrency',
  'rate',
  'lockout',
  'requestTimeout',
  'timeoutRetries',
  'maxResponseMb',
  'logFile',
  'allowInsecureApi',
  'lockDuration',
  'stalledInterval',
  'maxStalled',
  'backoff',
  'rateMargin',
  'breakerThreshold',
  'probeInterval',
  'grace',
  'watchdog',
  'window',
  'metricsPort',
] as const satisfies readonly SettingKey[];
