import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { freePort, spawnCli, waitFor } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';

/**
 * `systemctl reload` sends SIGHUP: the real agent process re-reads its configuration file. A
 * valid change is applied in place (same process, results and counters kept, only what changed
 * restarted); an invalid one changes nothing and logs each bad key; SIGHUP never kills it.
 */
t.test('SIGHUP re-reads the configuration', async (t) => {
  requireCommands('virsh', 'swtpm');
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const file = path.join(dir, 'config.yaml');
  const base = {
    logLevel: 'info',
    stateDir: path.join(dir, 'state'),
    listen: { host: '127.0.0.1', port },
    emulation: { enabled: false },
    identity: { schedule: '*/15 * * * *' },
    guests: { snapshotIntervalSeconds: 60 },
  };
  writeFileSync(file, stringify(base));
  const child = spawnCli(['serve', '-c', file], { ...process.env, VTPM_AGENT_CONFIG: '' });
  const lines: Array<Record<string, unknown>> = [];
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const l of parts) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  child.on('exit', (code, signal) => (exit = { code, signal }));
  t.teardown(() => {
    if (!exit) child.kill('SIGKILL');
  });
  const url = `http://127.0.0.1:${port}`;
  const get = async (p: string) => {
    const res = await fetch(`${url}${p}`, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, text: await res.text() };
  };
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec((await get('/metrics')).text)?.[1]);
  // /metrics serves a rendering up to a second old (the exposition cache): a value that just changed
  // is waited for, within a few seconds, not expected on the first scrape.
  const metricBecomes = async (name: string, value: number) => {
    let last = NaN;
    await waitFor(`${name} = ${value}`, async () => (last = await metric(name)) === value, 5_000, 250).catch(() => undefined);
    return last;
  };
  const reloadLine = async (after: number) => {
    const found = await waitFor('a reload log line', () => lines.slice(after).find((l) => /^(configuration reloaded|reload rejected)/.test(String(l.msg))), 30_000, 100);
    return found as Record<string, unknown> & { changed: string[] };
  };
  await waitFor('readiness', async () => (await get('/readyz')).status === 200, 90_000, 250);
  const status = async () => JSON.parse((await get('/status')).text) as { probes: Array<{ probe: string; startedAt: number }> };
  const before = await status();
  const started = await metric('vtpm_agent_start_timestamp_seconds');
  t.equal(await metricBecomes('vtpm_agent_config_last_reload_successful', 1), 1);

  // A valid change: the log level, one probe's schedule, one capability's setting.
  writeFileSync(file, stringify({ ...base, logLevel: 'debug', identity: { schedule: '*/17 * * * *' }, guests: { snapshotIntervalSeconds: 45 } }));
  let mark = lines.length;
  child.kill('SIGHUP');
  const applied = await reloadLine(mark);
  t.equal(applied.msg, 'configuration reloaded');
  t.same([...applied.changed].sort(), ['guests', 'identity', 'logLevel']);
  t.same(applied.schedulesStarted, ['*/17 * * * * (node-identity)'], 'only the changed schedule gets a new cron task');
  t.same(applied.schedulesStopped, ['*/15 * * * * (node-identity)']);
  t.same(applied.extensionsRestarted, ['guest-restart-watcher'], 'only the capability whose section changed restarts');
  t.same(applied.extensionsStarted, []);
  t.same(applied.extensionsStopped, []);
  t.equal(exit, null, 'still running');
  t.equal((await get('/readyz')).status, 200, 'still ready: the probe results were kept');
  const after = await status();
  const libvirtBefore = before.probes.find((p) => p.probe === 'libvirt');
  t.equal(after.probes.find((p) => p.probe === 'libvirt')?.startedAt, libvirtBefore?.startedAt, 'an unaffected probe was not re-run');
  t.equal(await metric('vtpm_agent_start_timestamp_seconds'), started, 'the same process and state');
  await waitFor('a debug line after the reload', () => lines.slice(mark).some((l) => l.level === 'debug') || undefined, 30_000, 100).catch(() => undefined);

  // Enabling a probe: it gets its schedule and runs at once.
  writeFileSync(file, stringify({ ...base, logLevel: 'debug', identity: { schedule: '*/17 * * * *' }, guests: { snapshotIntervalSeconds: 45 }, emulation: { enabled: true, versions: ['2.0'], levels: ['basic'] } }));
  mark = lines.length;
  child.kill('SIGHUP');
  const enabled = await reloadLine(mark);
  t.same(enabled.probesAdded, ['emulation']);
  t.same(enabled.extensionsRestarted, [], 'no capability reads the emulation section');
  await waitFor('the emulation probe result', async () => (await status()).probes.some((p) => p.probe === 'emulation'), 60_000, 250);

  // An invalid file: nothing changes, and each bad key is logged.
  writeFileSync(file, stringify({ ...base, logLevel: 'loud', listen: { host: '127.0.0.1', port: 70000 }, probes: { concurrency: 0 }, bogus: 1 }));
  mark = lines.length;
  child.kill('SIGHUP');
  const rejected = await reloadLine(mark);
  t.equal(rejected.msg, 'reload rejected: configuration unchanged');
  const bad = lines.slice(mark).filter((l) => l.msg === 'reload: invalid configuration key; the running configuration stays');
  t.same(bad.map((l) => l.key).sort(), ['(root)', 'listen.port', 'logLevel', 'probes.concurrency'], 'one error line per bad key');
  t.ok(bad.every((l) => l.level === 'error'));
  t.match(String(bad.find((l) => l.key === '(root)')?.problem), /unknown key\(s\) "bogus"/);
  t.equal(await metricBecomes('vtpm_agent_config_last_reload_successful', 0), 0);
  t.equal((await get('/readyz')).status, 200, 'still serving on the old port');

  // YAML that does not parse is rejected the same way.
  writeFileSync(file, 'listen: [unclosed\n');
  mark = lines.length;
  child.kill('SIGHUP');
  t.equal((await reloadLine(mark)).msg, 'reload rejected: configuration unchanged');

  // A burst of SIGHUPs (the kernel may merge those still pending into one): each reload runs
  // after the one before, and none is fatal.
  writeFileSync(file, stringify(base));
  mark = lines.length;
  for (let i = 0; i < 5; i += 1) {
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor('the burst reloaded', () => lines.slice(mark).some((l) => /^configuration reloaded/.test(String(l.msg))) || undefined, 60_000, 100);
  await new Promise((r) => setTimeout(r, 2000));
  t.ok(lines.slice(mark).every((l) => !/^reload (rejected|failed)/.test(String(l.msg))));
  t.equal(exit, null, 'SIGHUP never kills the agent');
  t.equal(await metricBecomes('vtpm_agent_config_last_reload_successful', 1), 1);

  child.kill('SIGTERM');
  await waitFor('exit', () => exit ?? undefined, 10_000, 50);
  t.same(exit, { code: 0, signal: null }, `clean exit after the reloads${stderr ? `: ${stderr}` : ''}`);
});
