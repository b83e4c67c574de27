/**
 * One throwaway `swtpm socket` on unix server and control sockets inside a Workspace:
 * CMD_INIT / CMD_SHUTDOWN over the control channel, TPM commands over the data channel,
 * SIGKILL at the hard limit. Errors say whether swtpm died and what it wrote.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { AgentError } from '../errors.js';
import type { TpmVersion } from '../libvirt/facts.js';
import { abortError, sleep, SocketChannel } from './channel.js';
import { cmdInit, cmdShutdown, CONTROL_RESULT_SIZE, parseControlResult } from './control.js';
import { TpmResponseError } from './rc.js';
import { liveChildren, type Workspace } from './workspace.js';
import { spawnLongRunning, type LongRunningChild } from '../util/long-running.js';

/** sun_path is 108 bytes on Linux, including the NUL. */
const MAX_SOCKET_PATH = 107;
const STDERR_LIMIT = 4096;
/** How long a failed request waits to learn whether swtpm died (only on the failure path). */
const EXIT_GRACE_MS = 100;

export interface StartOptions {
  swtpmPath: string;
  version: TpmVersion;
  stateDir: string;
  /** Socket and log names inside the workspace, unique per start. */
  name: string;
  /** Passphrase for `--key pwdfd=3,mode=aes-256-cbc`, as libvirt passes Nova's secret. Never logged. */
  keyPassphrase?: Buffer;
  env: NodeJS.ProcessEnv;
  /** performance.now() ms by which the sockets must be up. */
  deadline: number;
}

export class SwtpmInstance {
  private readonly exited: Promise<void>;
  private ctrl: SocketChannel | null = null;
  private data: SocketChannel | null = null;
  readonly serverPath: string;
  readonly ctrlPath: string;
  readonly logPath: string;

  private constructor(
    private readonly ws: Workspace,
    private readonly child: LongRunningChild,
    readonly options: StartOptions,
  ) {
    this.serverPath = path.join(ws.dir, `${options.name}.sock`);
    this.ctrlPath = path.join(ws.dir, `${options.name}.ctrl`);
    this.logPath = path.join(ws.dir, `${options.name}.log`);
    this.exited = child.exited.then(() => {
      liveChildren.delete(child.process);
    });
  }

  static paths(ws: Workspace, name: string): string[] {
    return [path.join(ws.dir, `${name}.sock`), path.join(ws.dir, `${name}.ctrl`)];
  }

  /** Spawns swtpm and waits until both sockets accept connections, or it dies, or the deadline. */
  static async start(ws: Workspace, options: StartOptions, signal: AbortSignal): Promise<SwtpmInstance> {
    for (const p of SwtpmInstance.paths(ws, options.name)) {
      if (Buffer.byteLength(p) > MAX_SOCKET_PATH) {
        throw new AgentError('VTPM_ERR_SWTPM_START', `socket path ${p} is longer than ${MAX_SOCKET_PATH} bytes; choose a shorter emulation.tempDir`);
      }
    }
    if (signal.aborted) throw abortError(signal, 'starting swtpm');
    const [server, ctrl] = SwtpmInstance.paths(ws, options.name) as [string, string];
    const log = path.join(ws.dir, `${options.name}.log`);
    const args = [
      'socket',
      ...(options.version === '2.0' ? ['--tpm2'] : []),
      '--tpmstate', `dir=${options.stateDir},mode=0600`,
      '--server', `type=unixio,path=${server},mode=0600`,
      '--ctrl', `type=unixio,path=${ctrl},mode=0600`,
      '--log', `file=${log},level=1`,
      // Exit when our data connection drops: a backstop if the agent dies by SIGKILL.
      '--terminate',
      ...(options.keyPassphrase ? ['--key', 'pwdfd=3,mode=aes-256-cbc'] : []),
    ];
    const principal = ws.options.principal;
    let child: LongRunningChild;
    try {
      child = await spawnLongRunning(options.swtpmPath, args, {
        cwd: ws.dir,
        env: options.env,
        // Written to fd 3 and closed; swtpm may close it first (EPIPE is expected and ignored).
        ...(options.keyPassphrase ? { fd3Input: options.keyPassphrase } : {}),
        stderrTailBytes: STDERR_LIMIT,
        ...(principal ? { uid: principal.uid, gid: principal.gid } : {}),
      });
    } catch (err) {
      // Not found keeps its code (VTPM_ERR_EXEC_NOT_FOUND); a spawn that failed is a start failure.
      if (err instanceof AgentError && err.code === 'VTPM_ERR_EXEC_FAILED') {
        const who = principal ? ` (running as ${principal.user}:${principal.group})` : '';
        throw new AgentError('VTPM_ERR_SWTPM_START', `${err.message}${who}`, { details: { swtpmPath: options.swtpmPath, user: principal?.user ?? null } });
      }
      throw err;
    }
    liveChildren.add(child.process);
    const inst = new SwtpmInstance(ws, child, options);
    ws.children.add(inst);
    await inst.waitForSockets(signal);
    return inst;
  }

  get pid(): number {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.child.exitStatus() !== null;
  }

  private describeExit(): string {
    const e = this.child.exitStatus();
    if (!e) return 'swtpm is still running';
    return e.signal ? `swtpm was killed by ${e.signal}` : `swtpm exited with code ${e.code}`;
  }

  /** The last lines swtpm wrote to stderr and its log: the real reason behind most failures. */
  async diagnostics(): Promise<string> {
    let logText = '';
    try {
      const fh = await open(this.logPath, 'r');
      try {
        const { size } = await fh.stat();
        const len = Math.min(size, 2048);
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, size - len);
        logText = buf.toString('utf8');
      } finally {
        await fh.close();
      }
    } catch {
      // no log yet
    }
    const lines = `${this.child.stderr()}\n${logText}`
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && l !== 'Data client disconnected');
    return [...new Set(lines)].slice(-6).join(' | ').slice(0, 600);
  }

  private async startError(reason: string): Promise<AgentError> {
    const diag = await this.diagnostics();
    const principal = this.ws.options.principal;
    const who = principal ? ` (running as ${principal.user}:${principal.group})` : '';
    // swtpm exits 1 without a word when it cannot open its log or state; say where to look.
    const hint = !diag && principal ? `; swtpm wrote nothing: check that ${principal.user} can write ${this.ws.dir}` : '';
    return new AgentError('VTPM_ERR_SWTPM_START', `${reason}${who}${diag ? `; swtpm said: ${diag}` : hint}`, {
      details: { exit: this.child.exitStatus(), swtpmPath: this.options.swtpmPath, user: principal?.user ?? null },
    });
  }

  private async waitForSockets(signal: AbortSignal): Promise<void> {
    const want = [this.serverPath, this.ctrlPath];
    for (;;) {
      // Abort first: an abort kills swtpm, and the kill is not the story.
      if (signal.aborted) throw abortError(signal, 'waiting for swtpm sockets');
      if (this.hasExited) throw await this.startError(`${this.describeExit()} before opening its sockets`);
      const present = await Promise.all(want.map((p) => stat(p).then((s) => s.isSocket(), () => false)));
      if (present.every(Boolean)) break;
      if (performance.now() >= this.options.deadline) {
        await this.kill();
        throw await this.startError(`swtpm did not open its sockets within the time limit (${this.describeExit()})`);
      }
      await sleep(3, signal).catch(() => {});
    }
    try {
      this.ctrl = await SocketChannel.connect(this.ctrlPath, 'control channel', this.options.deadline, signal, () => !this.hasExited);
    } catch (err) {
      if (this.hasExited) throw await this.startError(`${this.describeExit()} while connecting`);
      throw err;
    }
  }

  private remaining(deadline: number): number {
    return Math.max(1, deadline - performance.now());
  }

  /** CMD_INIT: swtpm loads (and decrypts) its state here; a non-zero result is a TpmResponseError. */
  async init(deadline: number, signal: AbortSignal): Promise<void> {
    const answer = await this.ctrlRequest(cmdInit(0), 'CMD_INIT', deadline, signal);
    const rc = parseControlResult(answer, 'CMD_INIT');
    if (rc !== 0) throw new TpmResponseError(this.options.version, 'CMD_INIT', rc);
  }

  private async ctrlRequest(cmd: Buffer, what: string, deadline: number, signal: AbortSignal): Promise<Buffer> {
    if (!this.ctrl) throw new AgentError('VTPM_ERR_SWTPM_START', 'control channel is not connected');
    return this.ctrl.request(cmd, { kind: 'fixed', size: CONTROL_RESULT_SIZE }, what, this.remaining(deadline), signal);
  }

  /** Sends one TPM command on the data channel (connecting on first use). */
  async transmit(command: Buffer, what: string, deadline: number, signal: AbortSignal): Promise<Buffer> {
    if (!this.data) {
      try {
        this.data = await SocketChannel.connect(this.serverPath, 'data channel', deadline, signal, () => !this.hasExited);
      } catch (err) {
        if (this.hasExited) throw await this.startError(`${this.describeExit()} before the data channel connected`);
        throw err;
      }
    }
    try {
      return await this.data.request(command, { kind: 'tpm' }, what, this.remaining(deadline), signal);
    } catch (err) {
      // A dropped connection is usually swtpm dying: wait briefly for its exit so the error says so.
      if (!signal.aborted && (this.hasExited || (await this.waitForExit(EXIT_GRACE_MS, signal)))) {
        throw await this.startError(`${this.describeExit()} during ${what} (${(err as Error).message})`);
      }
      throw err;
    }
  }

  /** CMD_SHUTDOWN, then wait for a clean exit (code 0). Kills it if it does not go in time. */
  async stop(deadline: number, signal: AbortSignal): Promise<void> {
    const answer = await this.ctrlRequest(cmdShutdown(), 'CMD_SHUTDOWN', deadline, signal);
    const rc = parseControlResult(answer, 'CMD_SHUTDOWN');
    this.data?.close();
    this.ctrl?.close();
    const gone = await this.waitForExit(this.remaining(deadline), signal);
    if (!gone) {
      await this.kill();
      throw new AgentError('VTPM_ERR_SWTPM_START', 'swtpm did not exit after CMD_SHUTDOWN and was killed');
    }
    if (rc !== 0) throw new TpmResponseError(this.options.version, 'CMD_SHUTDOWN', rc);
    if (this.child.exitStatus()?.code !== 0) throw await this.startError(`${this.describeExit()} after CMD_SHUTDOWN`);
    this.ws.children.delete(this);
  }

  /** true once the process has exited; false at the timeout or abort (timer and listener are cleared). */
  private waitForExit(ms: number, signal: AbortSignal): Promise<boolean> {
    if (this.hasExited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      signal.addEventListener('abort', onAbort, { once: true });
      void this.exited.then(() => done(true));
    });
  }

  /** SIGKILL and wait until the process is gone. Safe to call at any time, any number of times. */
  async kill(): Promise<void> {
    this.data?.close();
    this.ctrl?.close();
    if (!this.hasExited) this.child.kill('SIGKILL');
    await this.exited;
    this.ws.children.delete(this);
  }
}
