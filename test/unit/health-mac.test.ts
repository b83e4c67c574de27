import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { MAC_STORE_FILE, scanDenials, type MacInput } from '../../src/health/checks/mac.js';
import { stateStore } from '../fixtures/state-files.js';
import { lineTime, manufactureTime } from '../../src/health/parse/timestamp.js';

const fixtures = path.join(import.meta.dirname, '../fixtures/health');

function setup(t: { teardown(fn: () => void): void }) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-mac-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const kern = path.join(root, 'kern.log');
  const audit = path.join(root, 'audit.log');
  const agent = path.join(root, 'agent');
  mkdirSync(agent);
  const daemon = stateStore('health-mac');
  const input = (over: Partial<MacInput> = {}): MacInput => ({
    state: daemon,
    hostPath: (p) => p,
    logFiles: [kern, audit],
    agentStateDir: agent,
    windowSeconds: 3600,
    maxBytesPerFile: 1 << 20,
    apparmor: true,
    selinux: true,
    timeoutMs: 1000,
    swtpmPaths: [],
    ...over,
  });
  return { kern, audit, agent, store: path.join(agent, MAC_STORE_FILE), input };
}

t.test('scanDenials stops on abort between files and saves no partial state', async (t) => {
  const s = setup(t);
  copyFileSync(path.join(fixtures, 'apparmor-kern.log'), s.kern);
  copyFileSync(path.join(fixtures, 'selinux-audit.log'), s.audit);
  const ac = new AbortController();
  ac.abort(new Error('probe timed out'));
  await t.rejects(scanDenials(s.input({ signal: ac.signal }), 1_764_324_500_000), /probe timed out/);
  t.notOk(existsSync(s.store), 'nothing saved when aborted before the first file');

  // Aborted after the first file was read: the cursor of that file is not saved either.
  const first = await scanDenials(s.input(), 1_764_324_500_000);
  const saved = readFileSync(s.store, 'utf8');
  appendFileSync(s.kern, readFileSync(path.join(fixtures, 'apparmor-kern.log')));
  const mid = new AbortController();
  let reads = 0;
  const hostPath = (p: string) => {
    if (++reads === 2) mid.abort(new Error('probe timed out'));
    return p;
  };
  await t.rejects(scanDenials(s.input({ signal: mid.signal, hostPath }), 1_764_324_500_000), /probe timed out/);
  t.equal(readFileSync(s.store, 'utf8'), saved, 'store untouched by the aborted run');
  const next = await scanDenials(s.input(), 1_764_324_500_000);
  t.equal(next.store.totals.apparmor, first.store.totals.apparmor * 2, 'the appended lines are counted once, by the next complete run');
});

t.test('scanDenials: missing log files are skipped', async (t) => {
  const s = setup(t);
  writeFileSync(s.audit, '');
  const out = await scanDenials(s.input(), 1_764_324_500_000);
  t.same(out.store.totals, { apparmor: 0, selinux: 0 });
  t.equal(out.problem, null);
});

t.test('scanDenials reads at most maxBytesPerFile per file and run; the rest on later runs', async (t) => {
  const s = setup(t);
  const line = readFileSync(path.join(fixtures, 'apparmor-kern.log'), 'utf8').split('\n')[1]! + '\n';
  writeFileSync(s.kern, line.repeat(10));
  const budget = line.length * 3 + 5;
  const seen: number[] = [];
  for (let run = 0; run < 4; run++) seen.push((await scanDenials(s.input({ maxBytesPerFile: budget }), 1_764_324_500_000)).store.totals.apparmor);
  t.same(seen, [3, 6, 9, 10], 'one bounded read per run, not a loop over the whole backlog');
});

t.test('lineTime / manufactureTime: the time a line carries', async (t) => {
  t.equal(lineTime('type=AVC msg=audit(1764324400.123:801): avc:  denied'), 1_764_324_400_123);
  t.equal(lineTime('Nov 28 10:05:11 compute-1 kernel: [ 1061.5] audit: type=1400 audit(1764324311.5:219): apparmor="DENIED"'), 1_764_324_311_500);
  t.equal(lineTime('2026-11-28T17:37:22.923284Z qemu-system-x86_64: tpm-emulator: x'), Date.parse('2026-11-28T17:37:22.923Z'));
  t.equal(lineTime('2026-11-28 17:37:03.429+0000: starting up libvirt'), Date.parse('2026-11-28T17:37:03.429Z'));
  t.equal(lineTime('2026-11-28T18:37:22+01:00 host kernel: x'), Date.parse('2026-11-28T17:37:22Z'));
  t.equal(lineTime('Nov 28 10:07:00 compute-1 setroubleshoot[1500]: SELinux is preventing'), null, 'no year, no zone: not trusted');
  t.equal(lineTime('SWTPM_NVRAM_Lock_Dir: Could not lock access to lockfile'), null);
  t.equal(manufactureTime('Starting vTPM manufacturing as tss:tss @ Sat 28 Nov 2026 05:37:02 PM UTC'), Date.parse('2026-11-28T17:37:02Z'));
  t.equal(manufactureTime('Ending vTPM manufacturing @ Sat 28 Nov 2026 05:37:02 PM'), null, 'no zone');
});

t.test('scanDenials first read: old denials are the baseline (counted), not recent; later ones are', async (t) => {
  const s = setup(t);
  copyFileSync(path.join(fixtures, 'apparmor-kern.log'), s.kern);
  copyFileSync(path.join(fixtures, 'selinux-audit.log'), s.audit);
  const now = Date.parse('2026-11-28T18:00:00Z'); // a year after the fixtures' audit(…) stamps
  const first = await scanDenials(s.input(), now);
  t.ok(first.store.totals.apparmor > 0 && first.store.totals.selinux > 0, JSON.stringify(first.store.totals));
  t.same(first.store.recent, [], 'nothing from the backlog is recent: stamped lines are old, unstamped ones undated');
  // Appended after the baseline: an unstamped setroubleshoot line is new (read now), a stamped one keeps its time.
  const stamp = Math.floor((now - 60_000) / 1000);
  appendFileSync(s.audit, `Nov 28 17:59:00 compute-1 setroubleshoot[1500]: SELinux is preventing rpc-virtqemud from entrypoint access on the file /usr/bin/swtpm.\n`);
  appendFileSync(s.kern, `Nov 28 17:59:00 compute-1 kernel: audit: type=1400 audit(${stamp}.000:900): apparmor="DENIED" operation="open" profile="swtpm" name="/etc/x" comm="swtpm"\n`);
  const next = await scanDenials(s.input(), now);
  t.same(next.store.recent.map((r) => [r.mac, r.at]), [['apparmor', stamp * 1000], ['selinux', now]]);
  t.equal(next.store.totals.selinux, first.store.totals.selinux + 1);
});

t.test('scanDenials: a first-read backlog over the budget stays baseline until it has caught up', async (t) => {
  const s = setup(t);
  const line = 'Nov 28 10:07:00 compute-1 setroubleshoot[1500]: SELinux is preventing rpc-virtqemud from entrypoint access on the file /usr/bin/swtpm.\n';
  writeFileSync(s.kern, line.repeat(10));
  const now = Date.parse('2026-11-28T18:00:00Z');
  const budget = line.length * 4 + 1;
  for (let run = 0; run < 3; run++) {
    const out = await scanDenials(s.input({ maxBytesPerFile: budget }), now);
    t.same(out.store.recent, [], `run ${run}: old undated denials are not recent`);
  }
  appendFileSync(s.kern, line);
  const out = await scanDenials(s.input({ maxBytesPerFile: budget }), now);
  t.equal(out.store.totals.selinux, 11);
  t.same(out.store.recent.map((r) => r.at), [now], 'after the baseline, a new undated denial is dated by its read');
});

t.test('scanDenials read-only (one-shot check): counts from the daemon\'s store, writes nothing', async (t) => {
  const s = setup(t);
  copyFileSync(path.join(fixtures, 'apparmor-kern.log'), s.kern);
  copyFileSync(path.join(fixtures, 'selinux-audit.log'), s.audit);
  const now = 1_764_324_500_000;
  const alone = await scanDenials(s.input({ state: stateStore('health-mac', { readOnly: true }) }), now);
  t.ok(alone.store.totals.apparmor > 0 && alone.store.totals.selinux > 0, 'denials counted');
  t.notOk(existsSync(s.store), 'no store created');
  await scanDenials(s.input(), now);
  const saved = readFileSync(s.store, 'utf8');
  appendFileSync(s.kern, readFileSync(path.join(fixtures, 'apparmor-kern.log')));
  const checked = await scanDenials(s.input({ state: stateStore('health-mac', { readOnly: true }) }), now + 1000);
  t.ok(checked.store.totals.apparmor > JSON.parse(saved).totals.apparmor, 'new lines past the daemon\'s cursor are counted');
  t.equal(readFileSync(s.store, 'utf8'), saved, 'store untouched');
});
