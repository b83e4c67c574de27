/**
 * Hostile HTTP clients for the hardening test and bench, on 127.0.0.1 only and bounded in count
 * and time: slow clients that trickle their headers, pipelined floods, a /healthz prober and an
 * RSS sampler for a process id.
 */
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

export interface SlowClients {
  /** Per socket: ms from its connect to its close by the server (undefined: still open). */
  lifetimesMs(): Array<number | undefined>;
  stop(): void;
}

/** `count` connections opened over `rampMs`, each sending a request line, then one header byte a second. */
export function slowClients(port: number, count: number, rampMs: number): SlowClients {
  const sockets: Socket[] = [];
  const lifetimes: Array<number | undefined> = new Array(count).fill(undefined);
  let stopped = false;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < count; i++) {
    timers.push(
      setTimeout(() => {
        if (stopped) return;
        const opened = Date.now();
        const s = connect(port, '127.0.0.1');
        sockets.push(s);
        s.on('error', () => undefined);
        s.on('close', () => (lifetimes[i] = Date.now() - opened));
        s.on('connect', () => s.write('GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: '));
        const trickle = setInterval(() => (s.destroyed ? clearInterval(trickle) : s.write('a')), 1000);
        s.on('close', () => clearInterval(trickle));
      }, Math.floor((i * rampMs) / count)),
    );
  }
  return {
    lifetimesMs: () => lifetimes,
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
    },
  };
}

/** `connections` sockets, each writing `requests` pipelined GETs of `path` at once and reading nothing back. */
export function pipelinedFlood(port: number, connections: number, requests: number, path = '/healthz'): { closedByServer(): number; stop(): void } {
  const payload = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(requests));
  let stopping = false;
  let closed = 0;
  const sockets = Array.from({ length: connections }, () => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('connect', () => s.write(payload));
    s.on('close', () => (closed += stopping ? 0 : 1));
    // Read the answers (and drop them): the server must close the connection by itself.
    s.resume();
    return s;
  });
  return {
    closedByServer: () => closed,
    stop: () => {
      stopping = true;
      sockets.forEach((s) => s.destroy());
    },
  };
}

export interface ProbeStats {
  latenciesMs: number[];
  failures: string[];
}

/** GET /healthz on a fresh connection every `everyMs` until stopped; latency and failures of each. */
export function healthzProber(port: number, everyMs: number, timeoutMs = 1000): { stats: ProbeStats; stop(): Promise<ProbeStats> } {
  const stats: ProbeStats = { latenciesMs: [], failures: [] };
  const t0 = performance.now();
  const inflight = new Set<Promise<void>>();
  const once = () => {
    const started = performance.now();
    const p = new Promise<void>((resolve) => {
      const req = httpGet({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => {
          const ms = performance.now() - started;
          if (res.statusCode !== 200) stats.failures.push(`HTTP ${res.statusCode}`);
          else if (ms > timeoutMs) stats.failures.push(`took ${ms.toFixed(0)} ms (at ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
          stats.latenciesMs.push(ms);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => {
        stats.failures.push(`${err.message} (at ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        resolve();
      });
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const timer = setInterval(once, everyMs);
  return {
    stats,
    async stop() {
      clearInterval(timer);
      await Promise.all(inflight);
      return stats;
    },
  };
}

export function rssSampler(pid: number, everyMs = 200): { peak(): number; stop(): number } {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch {
      // the process is gone: keep the last peak
    }
  }, everyMs);
  return { peak: () => peak, stop: () => (clearInterval(timer), peak) };
}

/**
 * Run as a script (`node --import tsx test/harness/hostile-clients.ts PORT SLOW RAMP_MS SLOW_MS FLOOD_CONNS FLOOD_REQS FLOOD_MS`):
 * the hostile load in its own process, so the prober measuring /healthz is not slowed by it.
 * Prints one JSON line: the slow clients' lifetimes.
 */
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [port, slowCount, rampMs, slowMs, floodConns, floodReqs, floodMs] = process.argv.slice(2).map(Number) as [number, number, number, number, number, number, number];
  const slow = slowClients(port, slowCount, rampMs);
  await new Promise((r) => setTimeout(r, slowMs));
  const lifetimes = slow.lifetimesMs();
  slow.stop();
  const flood = pipelinedFlood(port, floodConns, floodReqs);
  await new Promise((r) => setTimeout(r, floodMs));
  const floodClosedByServer = flood.closedByServer();
  flood.stop();
  process.stdout.write(`${JSON.stringify({ lifetimes, floodClosedByServer })}\n`);
  process.exit(0);
}
