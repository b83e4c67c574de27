/**
 * State paths the agent cannot use, tried against the real agent process (`vtpm-agent serve`)
 * with the real libvirtd: the capability that cannot persist is reported not ready in /readyz
 * with the path and the reason, the failed writes are counted, a corrupt store is set aside with
 * a warning, and all of it recovers by itself once the path is usable again (no restart).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { waitFor } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { serve, testGuestsConfig } from '../harness/serve.js';

requireCommands('virsh', 'libvirtd');

interface Ready {
  ok?: boolean;
  checks: Record<string, { ready: boolean; detail?: string }>;
}

function startServe(t: { teardown(fn: () => unknown): void }, work: string) {
  // Only the capabilities with state files under test: the restart watcher and the guest-log health check.
  const checks = Object.fromEntries(
    ['binaries', 'capabilities', 'principal', 'localca', 'guestState', 'orphans', 'apparmor', 'selinux', 'crypto', 'nova', 'secrets', 'versions', 'container'].map((c) => [c, false]),
  );
  return serve(t, work, {
    stateDir: path.join(work, 'state'),
    probes: { schedule: '*/2 * * * * *' },
    emulation: { enabled: false },
    guests: { ...testGuestsConfig(work), inventorySchedule: '*/2 * * * * *' },
    health: { schedule: '*/2 * * * * *', checks: { ...checks, logs: true, tpmReset: true }, swtpmLogDir: path.join(work, 'swtpm-logs'), qemuLogDir: path.join(work, 'qemu-logs') },
  });
}

async function readyz(url: string): Promise<Ready & { httpStatus: number }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as Ready;
  return { ...body, httpStatus: res.status };
}

function setup(t: { teardown(fn: () => unknown): void }): string {
  const work = mkdtempSync(path.join(tmpdir(), 'vtpmtest-state-faults-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(path.join(work, 'boot_id'), 'aaaaaaaa-0000-4000-8000-00000000beef\n');
  writeFileSync(path.join(work, 'nova.conf'), '[DEFAULT]\n');
  mkdirSync(path.join(work, 'swtpm-logs'));
  mkdirSync(path.join(work, 'qemu-logs'));
  return work;
}

t.test('guests/snapshot.json is a directory: the restart watcher is not ready, names the path, and recovers by itself', async (t) => {
  const work = setup(t);
  const snapshot = path.join(work, 'state', 'guests', 'snapshot.json');
  mkdirSync(snapshot, { recursive: true });
  const agent = await startServe(t, work);
  const bad = await waitFor('restart watcher not ready', async () => {
    const r = await readyz(agent.url);
    return r.checks['guest-restart-watcher']?.ready === false && /EISDIR/.test(r.checks['guest-restart-watcher']?.detail ?? '') ? r : undefined;
  });
  t.equal(bad.httpStatus, 503, '/readyz fails');
  const detail = bad.checks['guest-restart-watcher']!.detail!;
  t.match(detail, snapshot, 'the path is named');
  t.match(detail, /EISDIR/, 'and the reason');
  t.match(detail, /following them across a reboot is off/, 'and what the agent does meanwhile');
  const logged = agent.logs().find((l) => typeof l.msg === 'string' && l.msg.includes(snapshot) && l.msg.includes('EISDIR'));
  t.ok(logged, 'the log line names the path and the reason');
  t.notOk(agent.logs().some((l) => l.msg === 'restart watcher could not initialise; retrying at each refresh' && !JSON.stringify(l).includes(snapshot)), 'no log line without the path');

  // The operator removes the directory: the next refresh initialises, writes the snapshot, ready again.
  rmSync(snapshot, { recursive: true });
  const good = await waitFor('restart watcher ready again', async () => {
    const r = await readyz(agent.url);
    return r.checks['guest-restart-watcher']?.ready === true ? r : undefined;
  });
  t.notOk(good.checks['guest-restart-watcher']!.detail, 'no problem left');
  await waitFor('snapshot written', () => existsSync(snapshot) && JSON.parse(readFileSync(snapshot, 'utf8')).version === 1);
  t.equal(agent.child.exitCode, null, 'recovered without a restart');
});

t.test('a snapshot that cannot be written after start: counted, not ready, recovers', async (t) => {
  const work = setup(t);
  const agent = await startServe(t, work);
  const snapshot = path.join(work, 'state', 'guests', 'snapshot.json');
  await waitFor('first snapshot', () => existsSync(snapshot));
  await waitFor('watcher ready', async () => (await readyz(agent.url)).checks['guest-restart-watcher']?.ready === true);
  rmSync(snapshot);
  mkdirSync(snapshot);
  const r = await waitFor('not ready', async () => {
    const x = await readyz(agent.url);
    return x.checks['guest-restart-watcher']?.ready === false ? x : undefined;
  });
  t.match(r.checks['guest-restart-watcher']!.detail, `guests/snapshot: cannot write ${snapshot} (EISDIR)`);
  t.ok(((await agent.sample('vtpm_state_write_errors_total', 'file="guests/snapshot"')) ?? 0) >= 1, 'vtpm_state_write_errors_total{file="guests/snapshot"} counts the failed writes');
  rmSync(snapshot, { recursive: true });
  await waitFor('ready again', async () => (await readyz(agent.url)).checks['guest-restart-watcher']?.ready === true);
  t.ok(existsSync(snapshot) && !readdirSync(path.dirname(snapshot)).some((n) => n.endsWith('.tmp')), 'written, no temp left');
});

t.test('health logs store: corrupt is set aside with a warning; unwritable is not ready with path and reason; both recover', async (t) => {
  const work = setup(t);
  const store = path.join(work, 'state', 'health', 'logs.json');
  mkdirSync(path.dirname(store), { recursive: true });
  writeFileSync(store, '{"version":1,"files":');
  const agent = await startServe(t, work);
  const warning = await waitFor('warning about the corrupt store', () => agent.logs().find((l) => l.code === 'VTPM_ERR_STATE_CORRUPT' && l.path === store));
  t.ok([40, 'warn'].includes(warning.level as number), `a warning (${String(warning.level)})`);
  t.match(warning.msg, /is not JSON; set aside as .*logs\.json\.corrupt-/);
  t.equal(readFileSync(String(warning.movedTo), 'utf8'), '{"version":1,"files":', 'the old copy is kept');
  await waitFor('a fresh store', () => existsSync(store) && JSON.parse(readFileSync(store, 'utf8')).version === 1);

  rmSync(store);
  mkdirSync(store);
  const r = await waitFor('health-logs not ready', async () => {
    const x = await readyz(agent.url);
    return x.checks['health-logs']?.ready === false ? x : undefined;
  });
  t.equal(r.httpStatus, 503);
  t.match(r.checks['health-logs']!.detail, `health/logs: cannot read ${store} (EISDIR)`);
  rmSync(store, { recursive: true });
  await waitFor('health-logs ready again', async () => (await readyz(agent.url)).checks['health-logs'] === undefined);
  await waitFor('store written again', () => existsSync(store));
  t.equal(agent.child.exitCode, null, 'no restart');
});
