import { describe, expect, it } from 'vitest';
import { checkApiTransport, loadConfig, loadWorkerConfig } from '../src/config.js';
import { parseDecimal, parseInteger, parseRate, parseSeconds } from '../src/config/parse.js';
import { SETTINGS, type SettingDef, type SettingKey } from '../src/config/settings.js';
import { normalizeApiHost, parseNotifyUrl } from '../src/config/urls.js';
import { usageMessage } from './helpers/usage.js';
import { cliEnv, runCli } from './helpers/cli.js';

const usage = usageMessage;

describe('setting parsers', () => {
  it('take plain decimal numbers only, naming the flag otherwise', () => {
    expect(parseInteger('400', '--width', { min: 1 })).toBe(400);
    for (const bad of ['0x400', '1e3', '', ' ', '4.5', '-3']) {
      expect(usage(() => parseInteger(bad, '--width', { min: 1 }))).toMatch(/^--width: /);
    }
    expect(parseDecimal('7.5', '--cfg-scale')).toBe(7.5);
    expect(usage(() => parseDecimal('', '--max-credits', { min: 0 }))).toMatch(/^--max-credits: "" must be a number/);
    expect(usage(() => parseDecimal('Infinity', '--max-credits'))).toMatch(/--max-credits/);
  });

  it('bound every duration to a day (Node timers overflow past 2^31-1 ms)', () => {
    expect(parseSeconds('180', '--request-timeout')).toBe(180_000);
    expect(parseSeconds('86400', '--lockout')).toBe(86_400_000);
    expect(usage(() => parseSeconds('2200000', '--request-timeout'))).toMatch(/--request-timeout.*24 h/);
    expect(usage(() => parseSeconds('86401', '--lockout'))).toMatch(/--lockout/);
    expect(usage(() => parseRate('150/100000'))).toMatch(/--rate/);
    expect(parseRate('150/10')).toEqual({ count: 150, windowMs: 10_000 });
  });
});

describe('the API host has one spelling', () => {
  it('lower-cases scheme and host, drops the default port and trailing slashes', () => {
    expect(normalizeApiHost('HTTP://127.0.0.1:7970/', 'STABILITY_API_HOST')).toBe('http://127.0.0.1:7970');
    expect(normalizeApiHost('https://API.Stability.AI:443//', 'STABILITY_API_HOST')).toBe('https://api.stability.ai');
    expect(normalizeApiHost('http://localhost:80/proxy/v/', 'X')).toBe('http://localhost/proxy/v');
    const env = { STABILITY_API_HOST: 'HTTP://127.0.0.1:7970/', STABILITY_API_KEY: 'sk-x' };
    expect(loadConfig({}, env).api.identity).toBe(
      loadConfig({}, { ...env, STABILITY_API_HOST: 'http://127.0.0.1:7970' }).api.identity,
    );
  });

  it('refuses a host without a scheme, and one with a user or password without printing it', () => {
    expect(usage(() => loadConfig({}, { STABILITY_API_HOST: 'api.stability.ai' }))).toMatch(
      /^STABILITY_API_HOST: .*https:\/\//,
    );
    const msg = usage(() => loadConfig({}, { STABILITY_API_HOST: 'https://bob:hunter2secret@api.example.com' }));
    expect(msg).toMatch(/user or password/);
    expect(msg).not.toContain('hunter2secret');
    expect(msg).not.toContain('bob');
    // A mistyped scheme does not parse: the text is shown without what could be a password.
    const typo = usage(() => loadConfig({}, { STABILITY_API_HOST: 'https//bob:hunter2secret@api.example.com' }));
    expect(typo).toMatch(/^STABILITY_API_HOST: "…@api\.example\.com" is not a URL/);
  });

  it('shows an S3 endpoint without its user or password, however it is wrong', async () => {
    const { describeSettings } = await import('../src/config.js');
    const env = { AWS_ENDPOINT_URL_S3: 'http://AKIAX:s3secretkey99@127.0.0.1:9000' };
    const [row] = describeSettings(['s3Endpoint'], {}, env);
    expect(row!.shown).toBe('http://127.0.0.1:9000');
    const bad = usage(() => loadConfig({ out: 's3://b/p' }, { AWS_ENDPOINT_URL_S3: 'http//AKIAX:s3secretkey99@h' }));
    expect(bad).not.toContain('s3secretkey99');
  });

  it('never quotes a webhook URL past its origin, however it is wrong', () => {
    for (const raw of ['https://bob:pw@hooks.example.com/T0/B0/TOKENTOKEN', 'hooks.example.com/T0/B0/TOKENTOKEN']) {
      const msg = usage(
        () => loadConfig({}, { NIGHTSHIFT_NOTIFY_URL: raw }).secrets && parseNotifyUrl(raw, 'NIGHTSHIFT_NOTIFY_URL'),
      );
      expect(msg).toMatch(/^NIGHTSHIFT_NOTIFY_URL: /);
      expect(msg).not.toMatch(/TOKENTOKEN|bob|pw@/);
    }
  });

  it('sends the key over plain http only to this machine, unless --allow-insecure-api', () => {
    const env = { STABILITY_API_HOST: 'http://10.1.2.3:8080', STABILITY_API_KEY: 'sk-x' };
    expect(usage(() => checkApiTransport(loadConfig({}, env)))).toMatch(/--allow-insecure-api/);
    expect(checkApiTransport(loadConfig({ allowInsecureApi: true }, env))).toMatch(/unencrypted/);
    expect(checkApiTransport(loadConfig({}, { ...env, STABILITY_API_HOST: 'http://127.0.0.1:8080' }))).toBeNull();
    expect(checkApiTransport(loadConfig({}, { ...env, STABILITY_API_HOST: 'http://[::1]:8080' }))).toBeNull();
    expect(checkApiTransport(loadConfig({ mock: true }, env))).toBeNull();
  });
});

describe('queue names', () => {
  it('refuses the name nightshift keeps its own keys under', () => {
    expect(usage(() => loadConfig({ queue: 'ns' }, {}))).toMatch(/--queue: "ns" is reserved/);
    expect(usage(() => loadConfig({}, { NIGHTSHIFT_QUEUE: 'a:b' }))).toMatch(/not a valid queue name/);
    expect(loadConfig({ queue: 'nsx' }, {}).queue).toBe('nsx');
  });
});

describe('flag over environment over default', () => {
  it('resolves the same way in the library as on the command line', () => {
    expect(loadWorkerConfig({}, {}).rate).toEqual({ count: 150, windowMs: 10_000 });
    expect(loadWorkerConfig({}, { NIGHTSHIFT_RATE: '10/1' }).rate).toEqual({ count: 10, windowMs: 1000 });
    expect(loadWorkerConfig({ rate: '5/2' }, { NIGHTSHIFT_RATE: '10/1' }).rate).toEqual({ count: 5, windowMs: 2000 });
    // An empty variable is unset, an empty flag is a mistake.
    expect(loadWorkerConfig({}, { NIGHTSHIFT_RATE: '' }).rate.count).toBe(150);
    expect(usage(() => loadWorkerConfig({ rate: '' }, {}))).toMatch(/^--rate/);
    expect(usage(() => loadWorkerConfig({}, { NIGHTSHIFT_RATE: 'fast' }))).toMatch(/^NIGHTSHIFT_RATE/);
    // A computed default follows the setting it depends on.
    expect(loadWorkerConfig({ requestTimeout: '20' }, {}).graceMs).toBe(30_000);
  });

  it('keeps the secrets a logger must censor: the key, URL passwords, a webhook path', () => {
    const c = loadConfig(
      { redis: 'redis://:p4ssw0rd-long@h:1' },
      { STABILITY_API_KEY: 'sk-abcdef', NIGHTSHIFT_NOTIFY_URL: 'https://hooks.example.com/T000/B000/XXXXXXXX' },
    );
    expect(c.secrets).toEqual(expect.arrayContaining(['sk-abcdef', 'p4ssw0rd-long', '/T000/B000/XXXXXXXX']));
  });
});

/** A valid value, different from the default, for every setting the environment can set. */
const ENV_SAMPLES: Partial<Record<SettingKey, [string, unknown]>> = {
  redis: ['redis://127.0.0.1:6390', 'redis://127.0.0.1:6390'],
  redisCluster: ['redis://:pw-env@127.0.0.1:7001,127.0.0.1:7002', 'redis://127.0.0.1:7001,127.0.0.1:7002'],
  queue: ['q-env', 'q-env'],
  out: ['./out-env', './out-env'],
  s3Endpoint: ['http://127.0.0.1:4569', 'http://127.0.0.1:4569'],
  s3Region: ['eu-west-1', 'eu-west-1'],
  logLevel: ['warn', 'warn'],
  prefix: ['{env}', '{env}'],
  defaultRedis: ['redis://127.0.0.1:6391', 'redis://127.0.0.1:6391'],
  debug: ['1', true],
  apiKey: ['sk-env', '[set]'],
  apiHost: ['HTTPS://Example.COM:443/', 'https://example.com'],
  accept: ['json', 'json'],
  concurrency: ['7', 7],
  maxConcurrency: ['300', 300],
  rate: ['10/1', { count: 10, windowMs: 1000 }],
  lockout: ['5', 5000],
  requestTimeout: ['20', 20_000],
  maxResponseMb: ['8', 8],
  lockDuration: ['3', 3000],
  stalledInterval: ['4', 4000],
  backoff: ['0.5', 500],
  probeInterval: ['6', 6000],
  watchdog: ['70', 70_000],
  notifyUrl: ['https://hooks.example.com/abcdefghijklmnop', 'https://hooks.example.com/…'],
  progressInterval: ['2', 2000],
  metricsPort: ['9464', 9464],
  wildcards: ['./wc', './wc'],
  window: ['22:00-07:00', { start: 79_200, end: 25_200, text: '22:00-07:00' }],
};

describe('every environment variable, through the real command line', () => {
  const envSettings = (Object.keys(SETTINGS) as SettingKey[]).filter((k) => (SETTINGS[k] as SettingDef<unknown>).env);

  it('has a sample for every setting the environment sets', () => {
    expect(envSettings.filter((k) => !(k in ENV_SAMPLES))).toEqual([]);
  });

  it('reads each variable, and a flag wins over it', async () => {
    const env: Record<string, string> = {};
    for (const k of envSettings) env[(SETTINGS[k] as SettingDef<unknown>).env![0]!] = ENV_SAMPLES[k]![0];
    const fromEnv = await runCli(['config', '--json'], cliEnv(env));
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const rows = JSON.parse(fromEnv.stdout) as Record<string, { value: unknown; source: string }>;
    for (const k of envSettings) {
      expect({ k, value: rows[k]?.value, source: rows[k]?.source }).toEqual({
        k,
        value: ENV_SAMPLES[k]![1],
        source: `env ${(SETTINGS[k] as SettingDef<unknown>).env![0]}`,
      });
    }
    expect(JSON.stringify(rows)).not.toContain('sk-env');
    expect(JSON.stringify(rows)).not.toContain('pw-env');

    const flagged = await runCli(
      ['config', 'work', '--rate', '3/1', '--queue', 'q-flag', '--log-level', 'error', '--json'],
      cliEnv(env),
    );
    expect(flagged.code, flagged.stderr).toBe(0);
    const w = JSON.parse(flagged.stdout) as Record<string, { value: unknown; source: string }>;
    expect(w.rate).toMatchObject({ value: { count: 3, windowMs: 1000 }, source: '--rate' });
    expect(w.queue).toMatchObject({ value: 'q-flag', source: '--queue' });
    expect(w.logLevel).toMatchObject({ value: 'error', source: '--log-level' });
    expect(w.concurrency).toMatchObject({ value: 7, source: 'env NIGHTSHIFT_CONCURRENCY' });

    const defaults = await runCli(['config', 'status', '--json'], cliEnv({}));
    const d = JSON.parse(defaults.stdout) as Record<string, { value: unknown; source: string }>;
    // `status` reads the same --rate default as `work`.
    expect(d.rate).toMatchObject({ value: { count: 150, windowMs: 10_000 }, source: 'default' });
    expect(d.logLevel).toMatchObject({ value: 'info', source: 'default' });
  });

  it('shows the queue a command would use: with --mock its own', async () => {
    const show = async (args: string[], env: Record<string, string> = {}) => {
      const r = await runCli(['config', 'work', ...args, '--json'], cliEnv(env));
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as Record<string, { value: unknown }>).queue!.value;
    };
    expect(await show(['--mock'])).toBe('nightshift-mock');
    expect(await show(['--mock'], { NIGHTSHIFT_QUEUE: 'q-env' })).toBe('q-env-mock');
    expect(await show(['--mock', '--queue', 'mine'])).toBe('mine');
    expect(await show([])).toBe('nightshift');
  });

  it('refuses bad values with exit 2 naming the flag or variable', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['enqueue', 'prompts/anime-sunset.txt', '--mock', '--width', '0x400', '--dry-run'], {}, /--width: "0x400"/],
      [['enqueue', 'prompts/anime-sunset.txt', '--mock', '--seed', '', '--dry-run'], {}, /--seed: ""/],
      [['enqueue', 'prompts/anime-sunset.txt', '--mock', '--max-credits', '', '--dry-run'], {}, /--max-credits: ""/],
      [['status', '--log-level', 'verbose'], {}, /--log-level: "verbose" must be one of/],
      [['mock-api', '--port', 'abc'], {}, /--port: "abc"/],
      [['mock-api', '--port', '99999'], {}, /--port: "99999"/],
      [['work', '--mock', '--request-timeout', '2200000'], {}, /--request-timeout: .*24 h/],
      [
        ['enqueue', 'prompts/anime-sunset.txt', '--dry-run'],
        { STABILITY_API_HOST: 'api.stability.ai' },
        /STABILITY_API_HOST: .*scheme/,
      ],
    ];
    for (const [args, extra, re] of cases) {
      const r = await runCli(args, cliEnv(extra), 20_000);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(re);
    }
  });

  it('the flags of retry, cancel and mock-api are checked by the setting parsers, before any connection', async () => {
    // Nothing listens on port 1: a flag checked only after connecting would exit 3, not 2.
    const env = cliEnv({ REDIS_URL: 'redis://127.0.0.1:1' });
    const cases: Array<[string[], RegExp]> = [
      [['retry', '--batch', 'b', '--max-credits', ''], /--max-credits: "" must be a number ≥ 0/],
      [['retry', '--batch', 'b', '--max-credits', '0x10'], /--max-credits: "0x10" must be a number ≥ 0/],
      [['mock-api', '--balance', '1e3'], /--balance: "1e3" must be a number ≥ 0/],
      [['mock-api', '--fail-rate', '0x1'], /--fail-rate: "0x1" must be a number from 0 to 1/],
      [['retry', '--class', 'transeint'], /--class: "transeint" must be one of rate_limited, transient/],
      [['retry', '--batch', '../x'], /--batch: "\.\.\/x" is not a valid batch name/],
      [['cancel', '--batch', '../x'], /--batch: "\.\.\/x" is not a valid batch name/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, env, 20_000);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(re);
    }
  });
});
