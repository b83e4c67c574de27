/**
 * One stream connection to a swtpm unix socket, carrying one request and one response at a
 * time. TPM responses are framed by the size in their header; control answers have a fixed
 * size. Bytes beyond a response, a closed connection or silence past the deadline are errors.
 */
import net from 'node:net';
import { AgentError } from '../errors.js';
import { announcedSize, TpmProtocolError } from './wire.js';

export type Framing = { kind: 'tpm' } | { kind: 'fixed'; size: number };

interface Waiter {
  framing: Framing;
  what: string;
  resolve(buf: Buffer): void;
  reject(err: Error): void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal, 'waiting'));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal, 'waiting'));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal, what: string): AgentError {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new AgentError('VTPM_ERR_EXEC_ABORTED', `${what} aborted: ${reason}`, { details: { reason } });
}

export { sleep };

export class SocketChannel {
  private pending: Buffer = Buffer.alloc(0);
  private waiter: Waiter | null = null;
  private closedReason: string | null = null;

  private constructor(
    private readonly socket: net.Socket,
    readonly label: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      this.settle();
    });
    socket.on('error', (err) => this.fail(`${label}: ${err.message}`));
    socket.on('close', () => this.fail(`${label}: connection closed by swtpm`));
  }

  /** Connects, retrying while the socket is not yet listening, until `deadline` (performance.now ms). */
  static async connect(path: string, label: string, deadline: number, signal: AbortSignal, alive: () => boolean = () => true): Promise<SocketChannel> {
    for (;;) {
      if (signal.aborted) throw abortError(signal, `connecting to ${label}`);
      // A refused connection to a dead swtpm's leftover socket file would otherwise spin until the deadline.
      if (!alive()) throw new AgentError('VTPM_ERR_SWTPM_START', `cannot connect to swtpm ${label} at ${path}: swtpm is no longer running`, { details: { path } });
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        return new SocketChannel(socket, label);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const retriable = code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EAGAIN';
        if (!retriable || performance.now() >= deadline) {
          throw new AgentError('VTPM_ERR_SWTPM_START', `cannot connect to swtpm ${label} at ${path}: ${(err as Error).message}`, {
            details: { path, code },
          });
        }
        await sleep(5, signal);
      }
    }
  }

  private fail(reason: string): void {
    if (this.closedReason === null) this.closedReason = reason;
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w.reject(new TpmProtocolError(`${w.what}: ${reason} after ${this.pending.length} byte(s) of the response`, { received: this.pending.length }));
    }
  }

  private settle(): void {
    const w = this.waiter;
    if (!w) return;
    let need: number | null;
    try {
      need = w.framing.kind === 'fixed' ? w.framing.size : announcedSize(this.pending);
    } catch (err) {
      this.waiter = null;
      w.reject(new TpmProtocolError(`${w.what}: ${(err as Error).message}`, (err as TpmProtocolError).details));
      return;
    }
    if (need === null || this.pending.length < need) return;
    this.waiter = null;
    if (this.pending.length > need) {
      w.reject(new TpmProtocolError(`${w.what}: ${this.pending.length - need} byte(s) beyond the ${need}-byte response`, { received: this.pending.length, expected: need }));
      return;
    }
    const out = this.pending;
    this.pending = Buffer.alloc(0);
    w.resolve(out);
  }

  /** Sends one command and waits for its complete response. */
  request(command: Buffer, framing: Framing, what: string, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error(`${this.label}: request while another is outstanding`));
    if (this.closedReason !== null) return Promise.reject(new TpmProtocolError(`${what}: ${this.closedReason}`));
    if (signal.aborted) return Promise.reject(abortError(signal, what));
    if (this.pending.length) {
      const n = this.pending.length;
      this.pending = Buffer.alloc(0);
      return Promise.reject(new TpmProtocolError(`${what}: ${n} unsolicited byte(s) from swtpm before the command`, { received: n }));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        this.waiter = null;
        cleanup();
        reject(abortError(signal, what));
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        cleanup();
        reject(new AgentError('VTPM_ERR_EXEC_TIMEOUT', `${what}: no complete response from swtpm within ${Math.round(timeoutMs)} ms`, { details: { received: this.pending.length } }));
      }, Math.max(1, timeoutMs));
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        framing,
        what,
        resolve: (b) => {
          cleanup();
          resolve(b);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      this.socket.write(command);
      this.settle();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
