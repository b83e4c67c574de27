import { execa } from 'execa';
import { AgentError } from '../errors.js';
import { childEnv } from './child-env.js';
import { killChild } from './kill-child.js';
import { which } from './which.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/**
 * Cap for calls that answer with a line or a small document: version banners, hostnames,
 * `--print-capabilities` JSON (a few hundred bytes in practice).
 */
export const SMALL_OUTPUT_BYTES = 64 * KiB;

export interface ExecOptions {
  /** Hard limit; the child gets SIGTERM, then SIGKILL 1 s later. */
  timeoutMs: number;
  /**
   * Most bytes the call may print on stdout, and separately on stderr. Size it from what the
   * call returns: past it the child is killed at once (SIGTERM, SIGKILL 1 s later) and the call
   * fails with VTPM_ERR_OUTPUT_TOO_LARGE, so a runaway child never holds more than this in memory.
   */
  maxOutputBytes: number;
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  /** How errors name the command (default: the argv, shortened); for calls with huge arguments. */
  label?: string;
}

export interface ExecResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type ExecKind = 'not-found' | 'timeout' | 'aborted' | 'signal' | 'spawn' | 'too-large';

const MAX_LABEL_CHARS = 200;

export function shortCommand(file: string, args: readonly string[]): string {
  const full = [file, ...args].join(' ');
  return full.length > MAX_LABEL_CHARS ? `${full.slice(0, MAX_LABEL_CHARS)}…` : full;
}

/** `1 MiB`, `64 KiB`, `300 B`: caps are powers of two in practice. */
export function formatBytes(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

const decoder = new TextDecoder();

/**
 * The executable to spawn, or a typed error. Resolved first, never spawned when missing: a failed
 * spawn that is then cancelled (the agent stopping) would make execa kill pid 0, the agent's own
 * process group (see kill-child.ts). An already aborted call does not start either.
 */
export async function resolveBinary(file: string, envPath: string | undefined, signal: AbortSignal | undefined, command: string): Promise<string> {
  const resolved = await which(file, envPath);
  if (resolved === null) {
    throw new AgentError('VTPM_ERR_EXEC_NOT_FOUND', `${file} not found on PATH`, { details: { command, kind: 'not-found' satisfies ExecKind } });
  }
  if (signal?.aborted) {
    throw new AgentError('VTPM_ERR_EXEC_ABORTED', `${file} was aborted`, { details: { command, kind: 'aborted' satisfies ExecKind } });
  }
  return resolved;
}

/**
 * Runs one command with a timeout and an output cap, and returns its output whatever the exit
 * code; throws a typed AgentError only when the command could not run to completion (missing,
 * timed out, killed, printed past its cap). Callers decide what a non-zero exit means.
 */
export async function runCommand(file: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
  const command = options.label ?? shortCommand(file, args);
  const env = options.env ?? process.env;
  const resolved = await resolveBinary(file, env.PATH, options.signal, command);
  const cap = options.maxOutputBytes;
  const subprocess = execa(resolved, args, {
    reject: false,
    timeout: options.timeoutMs,
    forceKillAfterDelay: 1000,
    cancelSignal: options.signal,
    // Never the agent's credentials: see child-env.ts.
    env: childEnv(env),
    extendEnv: false,
    input: options.input,
    cwd: options.cwd,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    stripFinalNewline: false,
    // Bytes, not characters: the cap is a memory bound.
    encoding: 'buffer',
    maxBuffer: cap,
  });
  // execa stops buffering at maxBuffer and closes the pipe, but leaves the child running: one that
  // survives EPIPE (or has stopped writing) would live on until the timeout. Kill it at the cap.
  let overflow: 'stdout' | 'stderr' | null = null;
  for (const stream of ['stdout', 'stderr'] as const) {
    let seen = 0;
    subprocess[stream]?.on('data', (chunk: Uint8Array) => {
      seen += chunk.length;
      if (seen > cap && overflow === null) {
        overflow = stream;
        killChild(subprocess, 'SIGTERM');
      }
    });
  }
  const result = await subprocess;
  // Checked before decoding: the partial output of a runaway child is never turned into a string.
  if (overflow !== null || result.isMaxBuffer) {
    const stream = overflow ?? 'stdout';
    throw new AgentError('VTPM_ERR_OUTPUT_TOO_LARGE', `${command} printed more than ${formatBytes(cap)} on ${stream} (the cap for this call) and was killed`, {
      details: { command, kind: 'too-large' satisfies ExecKind, stream, maxOutputBytes: cap },
    });
  }
  const stdout = decoder.decode(result.stdout ?? new Uint8Array());
  const stderr = decoder.decode(result.stderr ?? new Uint8Array());
  if (result.timedOut) {
    throw new AgentError('VTPM_ERR_EXEC_TIMEOUT', `${file} did not finish within ${options.timeoutMs} ms and was killed`, {
      details: { command, kind: 'timeout' satisfies ExecKind, timeoutMs: options.timeoutMs },
    });
  }
  if (result.isCanceled) {
    throw new AgentError('VTPM_ERR_EXEC_ABORTED', `${file} was aborted`, { details: { command, kind: 'aborted' satisfies ExecKind } });
  }
  const code = (result as { code?: string }).code;
  if (code === 'ENOENT' || (result.failed && result.exitCode === undefined && /ENOENT/.test(String(result.message)))) {
    throw new AgentError('VTPM_ERR_EXEC_NOT_FOUND', `${file} not found on PATH`, { details: { command, kind: 'not-found' satisfies ExecKind } });
  }
  if (result.exitCode === undefined) {
    const kind: ExecKind = result.signal ? 'signal' : 'spawn';
    throw new AgentError('VTPM_ERR_EXEC_FAILED', `${file} ${result.signal ? `was killed by ${result.signal}` : `could not be started: ${result.message}`}`, {
      details: { command, kind, signal: result.signal, stderr: stderr.slice(0, 2000) },
    });
  }
  return { command, exitCode: result.exitCode, stdout, stderr };
}
