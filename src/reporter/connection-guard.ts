/**
 * Keeps a client from holding the HTTP server hostage: every connection must deliver a complete
 * request within the headers timeout of being accepted (TLS handshake included) or of its last
 * response; at most `maxConnections` are open, and when a new one arrives at the cap the oldest
 * connection that is not being served (still sending its headers, or idle between keep-alive
 * requests) is shed to make room. So a flood of slow or idle sockets can only push out its own
 * kind: a scrape or a /healthz probe, which sends its request at once, gets in and is served.
 * Node's own `headersTimeout` only starts at a request's first byte; a socket that sends nothing
 * is held until the timer here fires.
 */
import type { Server, Socket } from 'node:net';

export interface GuardLimits {
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  /** Requests a connection may have unanswered at once (pipelined) before it is closed. */
  maxPipelined: number;
}

interface Tracked {
  socket: Socket;
  /** Requests being served on it (pipelining can make it more than one); never shed while > 0. */
  busy: number;
  timer: NodeJS.Timeout | undefined;
}

interface GuardCounters {
  accepted: number;
  shed: number;
  refused: number;
  timedOut: number;
  pipelineOverflows: number;
}

export class ConnectionGuard {
  /** Insertion order = age: the first evictable entry is the oldest. */
  private readonly open = new Map<string, Tracked>();
  readonly counters: GuardCounters = { accepted: 0, shed: 0, refused: 0, timedOut: 0, pipelineOverflows: 0 };

  constructor(private readonly limits: GuardLimits) {}

  get size(): number {
    return this.open.size;
  }

  /** Attach to the listening server's raw TCP connections (before TLS, so handshakes count). */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.accept(socket));
  }

  private static key(socket: { remoteAddress?: string; remotePort?: number }): string {
    return `${socket.remoteAddress}|${socket.remotePort}`;
  }

  private accept(socket: Socket): void {
    const key = ConnectionGuard.key(socket);
    if (this.open.size >= this.limits.maxConnections && !this.shedOne()) {
      this.counters.refused += 1;
      socket.destroy();
      return;
    }
    this.counters.accepted += 1;
    const entry: Tracked = { socket, busy: 0, timer: undefined };
    this.open.set(key, entry);
    this.arm(entry, key, this.limits.headersTimeoutMs);
    socket.once('close', () => {
      clearTimeout(entry.timer);
      if (this.open.get(key) === entry) this.open.delete(key);
    });
  }

  private arm(entry: Tracked, key: string, ms: number): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      if (entry.busy > 0) return;
      this.counters.timedOut += 1;
      entry.socket.destroy();
      this.open.delete(key);
    }, ms);
    entry.timer.unref();
  }

  private shedOne(): boolean {
    for (const [key, entry] of this.open) {
      if (entry.busy > 0) continue;
      clearTimeout(entry.timer);
      this.open.delete(key);
      entry.socket.destroy();
      this.counters.shed += 1;
      return true;
    }
    return false;
  }

  /**
   * A complete request arrived on this connection (`req.socket`, TLS or plain); returns the
   * callback for its end, or undefined when the connection was closed instead: a client with
   * more than `maxPipelined` requests unanswered is flooding (Node parses a whole pipelined
   * chunk in one go, thousands of requests, and would starve everyone else meanwhile).
   */
  requestStarted(socket: { remoteAddress?: string; remotePort?: number; destroyed?: boolean; destroy(): void }): (() => void) | undefined {
    if (socket.destroyed) return undefined;
    const key = ConnectionGuard.key(socket);
    const entry = this.open.get(key);
    if (!entry) return () => undefined;
    if (entry.busy >= this.limits.maxPipelined) {
      this.counters.pipelineOverflows += 1;
      clearTimeout(entry.timer);
      this.open.delete(key);
      socket.destroy();
      entry.socket.destroy();
      return undefined;
    }
    entry.busy += 1;
    clearTimeout(entry.timer);
    let done = false;
    // A new request waits again at most keep-alive + headers timeout; Node closes idle ones sooner.
    return () => {
      if (done) return;
      done = true;
      entry.busy -= 1;
      if (entry.busy === 0 && this.open.get(key) === entry) this.arm(entry, key, this.limits.keepAliveTimeoutMs + this.limits.headersTimeoutMs);
    };
  }
}
