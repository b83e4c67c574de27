import { AgentError } from '../errors.js';
import { runCommand, type ExecResult } from '../util/exec.js';

export interface VirshOptions {
  virshPath: string;
  uri: string;
  /** Use libvirt's read-only socket (`virsh -r`). Everything but domcapabilities allows it. */
  readOnly: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/** libvirt could not be reached at all (daemon down, socket missing, permission). */
export function isConnectionFailure(stderr: string): boolean {
  return /failed to connect to the hypervisor|Failed to connect socket|cannot connect|Connection refused|No such file or directory.*sock/i.test(stderr);
}

function baseArgs(options: VirshOptions): string[] {
  return [...(options.readOnly ? ['-r'] : []), '-q', '-c', options.uri];
}

/**
 * One virsh command; a non-zero exit becomes a typed error carrying virsh's message. `maxOutputBytes`
 * is sized from what the command returns (see util/exec.ts): past it virsh is killed.
 */
export async function virsh(args: readonly string[], options: VirshOptions, maxOutputBytes: number): Promise<string> {
  const result = await runCommand(options.virshPath, [...baseArgs(options), ...args], {
    timeoutMs: options.timeoutMs,
    maxOutputBytes,
    signal: options.signal,
    env: options.env,
  });
  if (result.exitCode !== 0) throw virshError(result);
  return result.stdout;
}

export function virshError(result: ExecResult): AgentError {
  const message = result.stderr.trim().split('\n').filter(Boolean).join('; ') || `exit status ${result.exitCode}`;
  return new AgentError(isConnectionFailure(result.stderr) ? 'VTPM_ERR_LIBVIRT_UNAVAILABLE' : 'VTPM_ERR_EXEC_FAILED', `virsh: ${message}`, {
    details: { command: result.command, exitCode: result.exitCode },
  });
}

/** `virsh <batch of 120: dumpxml …, …>`: the script argument itself can be 96 KiB. */
function batchLabel(virshPath: string, commands: readonly string[]): string {
  const kinds = [...new Set(commands.map((c) => c.split(' ')[0]))].join(', ');
  return `${virshPath} <batch of ${commands.length}: ${kinds}>`;
}

export interface BatchOutput {
  command: string;
  stdout: string;
}

/** A single argv string may not exceed 128 KiB (MAX_ARG_STRLEN); stay well below it. */
const MAX_SCRIPT_BYTES = 96 * 1024;

/**
 * Output cap of one batch process: `baseBytes` plus each command's own allowance, summed over the
 * commands that process runs (a batch is split into chunks, each capped by what it asks for).
 */
export interface BatchOutputCap {
  baseBytes: number;
  perCommandBytes(command: string): number;
}

export function batchCapBytes(commands: readonly string[], cap: BatchOutputCap): number {
  return commands.reduce((sum, c) => sum + cap.perCommandBytes(c), cap.baseBytes);
}

/**
 * Runs many virsh commands in as few processes as possible (about 20× cheaper than one process
 * each). The commands go in one argument, not on stdin: fed through stdin, virsh echoes a prompt
 * and each command into stdout. virsh's exit status is only the last command's, so each output is
 * delimited by an `echo` marker (virsh's echo prints no newline, so markers are matched inline),
 * and a command's failure shows as an empty section (its error text goes to the shared stderr).
 */
export async function virshBatch(commands: readonly string[], options: VirshOptions, cap: BatchOutputCap): Promise<{ outputs: BatchOutput[]; stderr: string }> {
  const outputs: BatchOutput[] = [];
  let stderr = '';
  let start = 0;
  while (start < commands.length) {
    let end = start;
    let bytes = 0;
    while (end < commands.length && (end === start || bytes + commands[end]!.length + 64 < MAX_SCRIPT_BYTES)) {
      bytes += commands[end]!.length + 64;
      end += 1;
    }
    const chunk = await virshBatchChunk(commands.slice(start, end), options, cap);
    outputs.push(...chunk.outputs);
    stderr += chunk.stderr;
    start = end;
  }
  return { outputs, stderr };
}

async function virshBatchChunk(commands: readonly string[], options: VirshOptions, cap: BatchOutputCap): Promise<{ outputs: BatchOutput[]; stderr: string }> {
  for (const c of commands) {
    // One argument holds the whole script: a separator inside a command would split it.
    if (/[;\n]/.test(c)) throw new AgentError('VTPM_ERR_EXEC_FAILED', `virsh batch command contains a separator: ${JSON.stringify(c)}`);
  }
  const nonce = `${process.pid.toString(36)}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const marker = (id: string) => `@@VTPM${nonce}:${id}@@`;
  const script = [...commands.flatMap((c, i) => [`echo ${marker(String(i))}`, c]), `echo ${marker('end')}`].join('; ');
  const label = batchLabel(options.virshPath, commands);
  const result = await runCommand(options.virshPath, [...baseArgs(options), script], {
    timeoutMs: options.timeoutMs,
    maxOutputBytes: batchCapBytes(commands, cap),
    signal: options.signal,
    env: options.env,
    label,
  });
  if (isConnectionFailure(result.stderr) && !result.stdout.includes(marker('0'))) throw virshError(result);
  if (!result.stdout.includes(marker('end'))) {
    // A clean exit without our markers is output we cannot read, not a failed command.
    const unreadable = result.exitCode === 0 && !result.stdout.includes(marker('0'));
    throw new AgentError(
      unreadable ? 'VTPM_ERR_PARSE' : 'VTPM_ERR_EXEC_FAILED',
      unreadable
        ? `${label} exited 0 but its output has none of the section markers it was asked to echo: ${JSON.stringify(result.stdout.slice(0, 200))}`
        : `virsh batch stopped before its end (${result.stderr.trim().slice(0, 500) || `exit ${result.exitCode}`})`,
      { details: { command: label, total: commands.length } },
    );
  }
  const outputs: BatchOutput[] = commands.map((command) => ({ command, stdout: '' }));
  const pattern = new RegExp(`@@VTPM${nonce}:(\\d+|end)@@\\n?`, 'g');
  let current: number | null = null;
  let from = 0;
  for (const m of result.stdout.matchAll(pattern)) {
    if (current !== null) outputs[current]!.stdout = result.stdout.slice(from, m.index);
    if (m[1] === 'end') break;
    current = Number.parseInt(m[1]!, 10);
    from = m.index! + m[0].length;
  }
  return { outputs, stderr: result.stderr };
}
