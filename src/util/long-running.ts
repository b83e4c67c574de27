import type { ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { AgentError } from '../errors.js';
import { childEnv } from './child-env.js';
import { resolveBinary, shortCommand, type ExecKind } from './exec.js';
import { killChild } from './kill-child.js';

/**
 * The one way to run a child that lives on (swtpm, `journalctl -f`, `virsh event --loop`), beside
 * runCommand for calls that finish: both resolve the binary first, hand it childEnv, and report
 * failures as typed AgentErrors.
 */

/** SIGTERM (stop, cancel, a line past the cap) is followed by SIGKILL this long after. */
export const FORCE_KILL_AFTER_MS = 1000;
const DEFAULT_STDERR_TAIL_BYTES = 4096;

export interface LongRunningOptions {
  /** PATH for the lookup, and (minus credentials, see child-env.ts) the child's environment. */
  env: NodeJS.ProcessEnv;
  /** Aborting it stops the child: SIGTERM, then SIGKILL after FORCE_KILL_AFTER_MS. */
  signal?: AbortSignal;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Bytes written to the child's fd 3, then closed (swtpm's `pwdfd=3`). Never logged. */
  fd3Input?: Uint8Array;
  /** How much of the end of stderr is kept for the exit result. */
  stderrTailBytes?: number;
  /** Called per complete stdout line (without the newline). Without it stdout is not read at all. */
  onLine?: (line: string) => void;
  /** Longest stdout line; a child printing a longer one is killed (it never grows our memory). */
  maxLineBytes?: number;
}

export interface LongRunningExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last stderrTailBytes of stderr (with a note when the child was killed for a long line). */
  stderr: string;
  /** The child was killed for printing a stdout line longer than maxLineBytes. */
  lineTooLong: boolean;
}

export interface LongRunningChild {
  readonly pid: number;
  /** The underlying process, for sets that must kill it synchronously at agent exit. */
  readonly process: ChildProcess;
  /** Resolves once the child has exited and its output is read; never rejects. */
  readonly exited: Promise<LongRunningExit>;
  /** The exit as soon as Node has seen it (before the output is drained), else null. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** The stderr tail so far. */
  stderr(): string;
  /** Sends a signal while the child runs (never to pid 0); SIGTERM is followed by SIGKILL. */
  kill(signal: NodeJS.Signals): boolean;
  /** SIGTERM, SIGKILL after FORCE_KILL_AFTER_MS, and waits for the exit. Safe at any time. */
  stop(): Promise<LongRunningExit>;
}

/** Keeps the last `limit` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= this.limit) this.bytes -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * Splits a byte stream into lines; a line (complete or not) longer than `maxBytes` calls
 * `onTooLong` once and everything after it is dropped. A last line without a newline is dropped:
 * it is incomplete.
 */
function lineSplitter(maxBytes: number, onLine: (line: string) => void, onTooLong: () => void): (chunk: Buffer) => void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let tooLong = false;
  return (chunk) => {
    if (tooLong) return;
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      const line = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      if (line.length > maxBytes) {
        tooLong = true;
        onTooLong();
        return;
      }
      onLine(line.toString('utf8'));
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > maxBytes) {
        tooLong = true;
        pending = [];
        onTooLong();
      }
    }
  };
}

/**
 * Starts `file` and resolves once it runs. Throws VTPM_ERR_EXEC_NOT_FOUND when it is not on PATH,
 * VTPM_ERR_EXEC_ABORTED when `signal` is already aborted, VTPM_ERR_EXEC_FAILED when the spawn
 * fails (EACCES, a uid we may not take).
 */
export async function spawnLongRunning(file: string, args: readonly string[], options: LongRunningOptions): Promise<LongRunningChild> {
  const command = shortCommand(file, args);
  const resolved = await resolveBinary(file, options.env.PATH, options.signal, command);
  const subprocess = execa(resolved, args, {
    reject: false,
    // Output is read here, line by line and bounded, never buffered by execa.
    buffer: false,
    cancelSignal: options.signal,
    forceKillAfterDelay: FORCE_KILL_AFTER_MS,
    // Never the agent's credentials: see child-env.ts.
    env: childEnv(options.env),
    extendEnv: false,
    cwd: options.cwd,
    uid: options.uid,
    gid: options.gid,
    stdio: ['ignore', options.onLine ? 'pipe' : 'ignore', 'pipe', ...(options.fd3Input ? [options.fd3Input] : [])],
  });
  const stderrTail = new Tail(options.stderrTailBytes ?? DEFAULT_STDERR_TAIL_BYTES);
  subprocess.stderr?.on('data', (chunk: Buffer) => stderrTail.push(chunk));
  let lineTooLong = false;
  const { onLine, maxLineBytes = Number.POSITIVE_INFINITY } = options;
  if (onLine) {
    subprocess.stdout?.on(
      'data',
      lineSplitter(maxLineBytes, onLine, () => {
        lineTooLong = true;
        stderrTail.push(Buffer.from(`\n[vtpm-agent] output line longer than ${maxLineBytes} bytes: killed`));
        killChild(subprocess, 'SIGTERM');
      }),
    );
  }
  // Resolved only once the child runs: callers never hold a handle with pid 0.
  const spawnError = await new Promise<Error | null>((resolve) => {
    subprocess.once('spawn', () => resolve(null));
    subprocess.once('error', (err) => resolve(err));
  });
  const result = subprocess.then((r) => r);
  if (spawnError !== null || subprocess.pid === undefined) {
    await result;
    // The binary was found: ENOENT here is a missing cwd, not a missing binary.
    const code = (spawnError as NodeJS.ErrnoException | null)?.code;
    throw new AgentError('VTPM_ERR_EXEC_FAILED', `${file} could not be started: ${spawnError?.message ?? 'no pid'}`, {
      details: { command, kind: 'spawn' satisfies ExecKind, errno: code ?? null },
    });
  }
  const exited = result.then(
    (): LongRunningExit => ({ code: subprocess.exitCode, signal: subprocess.signalCode, stderr: stderrTail.text(), lineTooLong }),
  );
  const pid = subprocess.pid;
  return {
    pid,
    process: subprocess,
    exited,
    exitStatus: () => (subprocess.exitCode === null && subprocess.signalCode === null ? null : { code: subprocess.exitCode, signal: subprocess.signalCode }),
    stderr: () => stderrTail.text(),
    kill: (signal) => killChild(subprocess, signal),
    stop: async () => {
      killChild(subprocess, 'SIGTERM');
      return exited;
    },
  };
}
