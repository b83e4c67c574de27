/** `vtpm-agent serve` as a real child process with a config file, for fault and crash tests. */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, spawnCli, waitFor } from './agent.js';

export interface ServedAgent {
  url: string;
  child: ChildProcess;
  /** The JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  /** One sample of a scrape, by name and a label substring (`outcome="gone"`). */
  sample(name: string, labels: string): Promise<number | undefined>;
}

/** The guest watcher's settings for a test: a boot id file of its own, fast snapshots, no event stream. */
export function testGuestsConfig(work: string): Record<string, unknown> {
  return {
    bootIdPath: path.join(work, 'boot_id'),
    novaConfPath: path.join(work, 'nova.conf'),
    snapshotIntervalSeconds: 1,
    resyncIntervalSeconds: 1,
    eventWatcher: false,
    swtpmLogDir: path.join(work, 'swtpm-logs'),
  };
}

/** Starts `serve` on a free loopback port with `config` (listen is filled in); stopped at teardown. */
export async function serve(t: { teardown(fn: () => unknown): void }, work: string, config: Record<string, unknown>): Promise<ServedAgent> {
  const port = await freePort();
  const file = path.join(work, `config-${port}.yaml`);
  writeFileSync(file, stringify({ logLevel: 'info', ...config, listen: { host: '127.0.0.1', port } }));
  const child = spawnCli(['serve', '--config', file]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`agent on ${url}\n${out}`, async () => (await fetch(`${url}/healthz`)).ok, 60_000);
  return {
    url,
    child,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    sample: async (name, labels) => {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    },
  };
}
