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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'vtpm-agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
