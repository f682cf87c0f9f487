import pino, { type Logger, type DestinationStream, type StreamEntry } from 'pino';
import pretty from 'pino-pretty';
import { createRedactor } from './secrets.js';

export type { Logger };

/** Anything that could carry the API key is censored, whatever the log call passes. */
export const REDACT_PATHS = [
  'apiKey',
  'key',
  'authorization',
  'Authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.apiKey',
  '*.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
];

export interface LoggerOptions {
  level: string;
  /** Where the main stream goes; stdout for long-running commands, stderr when stdout carries results. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /**
   * Extra JSON log files, as descriptors the caller opened (`--log-file` where the user chose, and
   * `<out>/<batch>/run.log` without following a planted link): judged before the logger exists.
   */
  files?: Array<{ fd: number }>;
  /** Readable lines instead of JSON (default: when the stream is a TTY). */
  pretty?: boolean;
  /**
   * Values never to print (the API key, a Redis password, a webhook token): removed from every
   * finished log line, message and nested fields alike, whatever the log call passed.
   */
  secrets?: readonly string[];
}

export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.stream ?? process.stdout;
  const usePretty = opts.pretty ?? out.isTTY === true;
  const main: DestinationStream = usePretty
    ? pretty({
        destination: out,
        sync: true,
        colorize: out.isTTY === true,
        ignore: 'pid,hostname',
        translateTime: 'SYS:HH:MM:ss',
      })
    : (out as unknown as DestinationStream);
  const streams: StreamEntry[] = [{ level: opts.level as pino.Level, stream: main }];
  for (const file of opts.files ?? []) {
    streams.push({ level: opts.level as pino.Level, stream: pino.destination({ fd: file.fd, sync: false }) });
  }
  // Paths catch the fields known to carry secrets; the line hook catches a secret anywhere else.
  const redactLine = createRedactor(opts.secrets ?? []);
  return pino(
    {
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      hooks: { streamWrite: redactLine },
    },
    pino.multistream(streams),
  );
}
