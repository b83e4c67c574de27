/**
 * A check's private 0700 directory (owned by the swtpm principal) and the swtpm processes
 * started in it. `dispose()` kills what still runs and removes the directory; the process's
 * `exit` event does the same synchronously as a last resort, and the next round sweeps what an
 * agent killed by SIGKILL left behind.
 */
import { killChild } from '../util/kill-child.js';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AgentError } from '../errors.js';
import { abortError } from './channel.js';
import type { Principal } from './principal.js';
import { processesMentioning } from './procscan.js';

export const TEMP_PREFIX = 'vtpm-agent-emu-';

// ------------------------------------------------------------ last-resort cleanup on exit

/** Every swtpm child still running in this process, for the exit hook. */
export const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/** If the agent exits with a check in flight (process.exit after SIGTERM), kill and remove synchronously. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) killChild(child, 'SIGKILL');
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

// ------------------------------------------------------------ workspace

export interface WorkspaceOptions {
  /** Parent of the private directory (os.tmpdir() by default: systemd PrivateTmp). */
  base: string;
  principal: Principal | null;
  signal: AbortSignal;
  log: Logger;
}

/** One check's private directory and the swtpm processes started in it. */
export class Workspace {
  readonly children = new Set<{ kill(): Promise<void> }>();
  private readonly onAbort = () => this.killAll();
  private disposed = false;

  private constructor(
    readonly dir: string,
    readonly options: WorkspaceOptions,
  ) {
    options.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  static async create(options: WorkspaceOptions): Promise<Workspace> {
    installExitHook();
    if (options.signal.aborted) throw abortError(options.signal, 'creating the emulation workspace');
    let dir: string;
    try {
      dir = await mkdtemp(path.join(options.base, `${TEMP_PREFIX}${process.pid}-`));
    } catch (err) {
      throw new AgentError('VTPM_ERR_SWTPM_START', `cannot create a private directory under ${options.base}: ${(err as Error).message}`, {
        details: { base: options.base, code: (err as NodeJS.ErrnoException).code },
      });
    }
    liveDirs.add(dir);
    const ws = new Workspace(dir, options);
    try {
      // mkdtemp makes it 0700; hand it to the swtpm principal like libvirt hands over the per-VM dir.
      if (options.principal) await chown(dir, options.principal.uid, options.principal.gid);
    } catch (err) {
      await ws.dispose();
      throw new AgentError('VTPM_ERR_SWTPM_START', `cannot give ${dir} to ${options.principal?.user}: ${(err as Error).message}`);
    }
    return ws;
  }

  /** A subdirectory for one TPM state, owned like the workspace. */
  async stateDir(name: string): Promise<string> {
    const dir = path.join(this.dir, name);
    await mkdir(dir, { mode: 0o700 });
    if (this.options.principal) await chown(dir, this.options.principal.uid, this.options.principal.gid);
    return dir;
  }

  private killAll(): void {
    for (const child of this.children) void child.kill();
  }

  /** Kills whatever still runs, waits for it to be gone, removes the directory. Never throws. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.options.signal.removeEventListener('abort', this.onAbort);
    await Promise.all([...this.children].map((c) => c.kill()));
    try {
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
      liveDirs.delete(this.dir);
    } catch (err) {
      this.options.log.error({ dir: this.dir, err: (err as Error).message }, 'cannot remove emulation workspace');
    }
  }
}

/** Directories left by an agent that died by SIGKILL (pid in the name no longer alive). */
export async function sweepStaleWorkspaces(base: string, log: Logger): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = name.startsWith(TEMP_PREFIX) ? /^(\d+)-/.exec(name.slice(TEMP_PREFIX.length)) : null;
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) continue;
    const dir = path.join(base, name);
    // swtpm started before the agent's data connection existed has no --terminate trigger.
    for (const orphan of await processesMentioning(`${dir}/`)) {
      try {
        process.kill(orphan.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await rm(dir, { recursive: true, force: true }).then(
      () => removed.push(dir),
      (err: Error) => log.warn({ dir, err: err.message }, 'cannot remove stale emulation workspace'),
    );
  }
  return removed;
}
