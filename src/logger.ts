import { fstatSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths whose values never reach a log: credentials, tokens, secret payloads. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'applicationCredentialSecret',
  '*.applicationCredentialSecret',
  '*.*.applicationCredentialSecret',
  'secret',
  '*.secret',
  'payload',
  '*.payload',
  'headers["x-auth-token"]',
  '*.headers["x-auth-token"]',
  'headers["x-subject-token"]',
  '*.headers["x-subject-token"]',
  'authorization',
  '*.authorization',
];

export const LOG_FORMATS = ['json', 'logfmt'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * pino's numeric levels → syslog priorities (sd-daemon.h SD_CRIT … SD_DEBUG): fatal is
 * critical, error err, warn warning, info info, debug and trace debug.
 */
export function syslogPriority(pinoLevel: number): number {
  if (pinoLevel >= 60) return 2;
  if (pinoLevel >= 50) return 3;
  if (pinoLevel >= 40) return 4;
  if (pinoLevel >= 30) return 6;
  return 7;
}

/**
 * systemd sets JOURNAL_STREAM=<dev>:<inode> (decimal) for a service whose stdout or stderr is
 * connected to journald. It is inherited by children with other outputs, so it counts only when
 * it names the very file descriptor we write to (systemd.exec(5), "$JOURNAL_STREAM").
 */
export function writesToJournal(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const expected = env.JOURNAL_STREAM;
  if (!expected) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return expected === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

const LEVEL_LABELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const BARE_VALUE = /^[^\s"=\\]+$/;

function logfmtValue(value: unknown): string {
  const text = typeof value === 'string' ? value : value === null || value === undefined ? String(value) : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text !== '' && BARE_VALUE.test(text) ? text : JSON.stringify(text);
}

function flatten(prefix: string, value: unknown, out: string[]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(prefix ? `${prefix}.${k}` : k, v, out);
    return;
  }
  out.push(`${prefix}=${logfmtValue(value)}`);
}

/**
 * One pino JSON line → one logfmt line (`time=… level=… msg=… key=value`, nested keys joined
 * with dots, values quoted and escaped when they hold spaces, quotes or newlines), as exporters'
 * `--log.format=logfmt` prints.
 */
export function jsonLineToLogfmt(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, ...rest } = record;
  const out: string[] = [];
  if (time !== undefined) out.push(`time=${logfmtValue(time)}`);
  if (level !== undefined) out.push(`level=${logfmtValue(typeof level === 'number' ? (LEVEL_LABELS[level] ?? level) : level)}`);
  if (msg !== undefined) out.push(`msg=${logfmtValue(msg)}`);
  for (const [k, v] of Object.entries(rest)) flatten(k, v, out);
  return `${out.join(' ')}\n`;
}

export interface LogOutputOptions {
  /** File descriptor the lines go to (1 for `serve`, 2 for `check` and `reconcile`). */
  fd?: number;
  format?: LogFormat;
  env?: NodeJS.ProcessEnv;
  /** Synchronous writes (one-shot commands whose last lines must not be lost on exit). */
  sync?: boolean;
  /** Where the finished lines go instead of the fd (tests). */
  sink?: { write(s: string): unknown };
  /** Prefix lines with `<N>`; by default: when JOURNAL_STREAM names the fd. */
  journal?: boolean;
}

/**
 * pino's destination, in the main thread (no transport, no worker): pino hands it the numeric
 * level of each line (the `pino.metadata` protocol multistream uses), so the syslog prefix costs
 * no parsing. JSON lines pass through untouched; logfmt re-encodes them.
 */
export class LogOutput implements DestinationStream {
  /** Set by pino before each write. */
  lastLevel = 30;
  format: LogFormat;
  /** Whether each line starts with `<N>` (sd-daemon SyslogLevelPrefix) for journald. */
  readonly journal: boolean;
  private readonly sink: { write(s: string): unknown; flush?(cb?: (err?: Error) => void): void; flushSync?(): void };

  constructor(options: LogOutputOptions = {}) {
    const fd = options.fd ?? 1;
    // Asks pino to set lastLevel before each write.
    Object.defineProperty(this, Symbol.for('pino.metadata'), { value: true });
    this.format = options.format ?? 'json';
    this.journal = options.journal ?? writesToJournal(fd, options.env);
    this.sink = options.sink ?? pino.destination({ fd, sync: options.sync ?? false });
  }

  write(line: string): void {
    const body = this.format === 'logfmt' ? jsonLineToLogfmt(line) : line;
    this.sink.write(this.journal ? `<${syslogPriority(this.lastLevel)}>${body}` : body);
  }

  flush(cb?: (err?: Error) => void): void {
    if (this.sink.flush) this.sink.flush(cb);
    else cb?.();
  }

  flushSync(): void {
    this.sink.flushSync?.();
  }
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'vtpm-agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? new LogOutput(),
  );
}
