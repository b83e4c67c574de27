/**
 * A real Prometheus server (Debian package) in a temp dir, scraping given targets with given rule
 * files, for end-to-end alert tests. Always stop it (t.teardown): it kills the child and removes
 * the dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireCommands, stopChild } from './components.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface PrometheusOptions {
  /** host:port of each scrape target. */
  targets: string[];
  /** More targets with target labels (e.g. a region per group), in the same job. */
  targetGroups?: Array<{ targets: string[]; labels?: Record<string, string> }>;
  job?: string;
  /** Absolute paths of rule files to load. */
  ruleFiles: string[];
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** HTTPS scraping: the CA to trust, an optional client certificate and basic auth. */
  tls?: { caFile: string; certFile?: string; keyFile?: string };
  basicAuth?: { username: string; password: string };
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt?: string;
  value?: string;
}

export interface PrometheusServer {
  url: string;
  dir: string;
  alerts(): Promise<PromAlert[]>;
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  requireCommands('prometheus');
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guests-prom-'));
  const port = await freePort();
  const config = [
    'global:',
    `  scrape_interval: ${opts.scrapeInterval ?? '1s'}`,
    `  scrape_timeout: ${opts.scrapeInterval ?? '1s'}`,
    `  evaluation_interval: ${opts.evaluationInterval ?? '1s'}`,
    'rule_files:',
    ...opts.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`),
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(opts.job ?? 'vtpm-agent')}`,
    ...(opts.tls
      ? [
          '    scheme: https',
          '    tls_config:',
          `      ca_file: ${JSON.stringify(opts.tls.caFile)}`,
          ...(opts.tls.certFile ? [`      cert_file: ${JSON.stringify(opts.tls.certFile)}`, `      key_file: ${JSON.stringify(opts.tls.keyFile)}`] : []),
        ]
      : []),
    ...(opts.basicAuth ? ['    basic_auth:', `      username: ${JSON.stringify(opts.basicAuth.username)}`, `      password: ${JSON.stringify(opts.basicAuth.password)}`] : []),
    '    static_configs:',
    ...[{ targets: opts.targets }, ...(opts.targetGroups ?? [])]
      .filter((g) => g.targets.length > 0)
      .map((g) => `      - ${JSON.stringify({ targets: g.targets, labels: 'labels' in g ? g.labels : undefined })}`),
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${stderr}`);
      try {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`prometheus not ready: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    dir,
    stop,
    async alerts() {
      const body = await getJson(`${url}/api/v1/alerts`);
      return body.data.alerts as PromAlert[];
    },
    async query(expr: string) {
      const body = await getJson(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      return body.data.result;
    },
  };
}
