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

/** One virsh command; a non-zero exit becomes a typed error carrying virsh's message. */
export async function virsh(args: readonly string[], options: VirshOptions): Promise<string> {
  const result = await runCommand(options.virshPath, [...baseArgs(options), ...args], {
    timeoutMs: options.timeoutMs,
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

export interface BatchOutput {
  command: string;
  stdout: string;
}

/**
 * Runs many virsh commands in one process (about 20× cheaper than one process each). virsh's
 * exit status is only the last command's, so each output is delimited by an `echo` marker and
 * a command's failure shows as an empty section (its error text goes to the shared stderr).
 */
export async function virshBatch(commands: readonly string[], options: VirshOptions): Promise<{ outputs: BatchOutput[]; stderr: string }> {
  if (commands.length === 0) return { outputs: [], stderr: '' };
  const marker = `__VTPM_AGENT_${process.pid}_${Date.now().toString(36)}__`;
  const script = commands.map((c, i) => `echo ${marker}${i}\n${c}`).join('\n') + `\necho ${marker}end\n`;
  const result = await runCommand(options.virshPath, baseArgs(options), {
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    env: options.env,
    input: script,
  });
  if (isConnectionFailure(result.stderr) && !result.stdout.includes(`${marker}0`)) throw virshError(result);
  const outputs: BatchOutput[] = [];
  const parts = result.stdout.split(new RegExp(`^${marker}`, 'm'));
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    const id = nl === -1 ? part : part.slice(0, nl);
    if (id === 'end') break;
    const index = Number.parseInt(id, 10);
    const command = commands[index];
    if (command === undefined) continue;
    outputs[index] = { command, stdout: nl === -1 ? '' : part.slice(nl + 1) };
  }
  if (!result.stdout.includes(`${marker}end`)) {
    throw new AgentError('VTPM_ERR_EXEC_FAILED', `virsh batch stopped before its end (${result.stderr.trim().slice(0, 500) || `exit ${result.exitCode}`})`, {
      details: { command: result.command, completed: outputs.filter(Boolean).length, total: commands.length },
    });
  }
  return { outputs: commands.map((command, i) => outputs[i] ?? { command, stdout: '' }), stderr: result.stderr };
}
