import { execa } from 'execa';
import { AgentError } from '../errors.js';
import { childEnv } from './child-env.js';
import { which } from './which.js';

export interface ExecOptions {
  /** Hard limit; the child gets SIGTERM, then SIGKILL 1 s later. */
  timeoutMs: number;
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
}

export interface ExecResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type ExecKind = 'not-found' | 'timeout' | 'aborted' | 'signal' | 'spawn';

/**
 * Runs one command with a timeout and returns its output whatever the exit code; throws a typed
 * AgentError only when the command could not run to completion (missing, timed out, killed).
 * Callers decide what a non-zero exit means.
 */
export async function runCommand(file: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
  const command = [file, ...args].join(' ');
  const env = options.env ?? process.env;
  // Resolved first, never spawned when missing: a failed spawn that is then cancelled (the agent
  // stopping) would make execa kill pid 0 — the agent's own process group (see kill-child.ts).
  const resolved = await which(file, env.PATH);
  if (resolved === null) {
    throw new AgentError('VTPM_ERR_EXEC_NOT_FOUND', `${file} not found on PATH`, { details: { command, kind: 'not-found' satisfies ExecKind } });
  }
  if (options.signal?.aborted) {
    throw new AgentError('VTPM_ERR_EXEC_ABORTED', `${file} was aborted`, { details: { command, kind: 'aborted' satisfies ExecKind } });
  }
  const result = await execa(resolved, args, {
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
    maxBuffer: 64 * 1024 * 1024,
  });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
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
