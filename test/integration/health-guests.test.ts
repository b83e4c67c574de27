/**
 * Per-guest checks against real vTPM guests on the shared libvirtd: wrong-owner state dir (C5),
 * an orphaned swtpm started by hand on a stopped guest's state (C6, and the start it breaks,
 * seen in the logs, C10), and TPM resets (C10): the state dir deleted before a start (libvirt
 * re-manufactures) and only the state file deleted (swtpm silently starts a blank TPM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { requireLibvirt } from '../harness/libvirt.js';
import { requireCommands } from '../harness/components.js';
import { promtoolCheckMetrics } from '../harness/promtool.js';
import { defineGuest, findingsFor, healthProbes, healthRig, removeGuest, virsh, virshOk, type TestGuest } from '../harness/health.js';
import { parsePasswd } from '../../src/host/accounts.js';
import { healthGuestStateProbe } from '../../src/health/checks/guest-state.js';
import { healthOrphansProbe } from '../../src/health/checks/orphans.js';
import { healthLogsProbe } from '../../src/health/checks/logs.js';
import type { Probe } from '../../src/probes/types.js';

requireLibvirt();
requireCommands('swtpm', 'promtool');

const tss = parsePasswd(readFileSync('/etc/passwd', 'utf8')).find((u) => u.name === 'tss');
if (!tss) throw new Error('the tss user (libvirt\'s swtpm principal on Debian) is missing');

async function waitForFile(file: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (existsSync(file)) return;
    if (child.exitCode !== null) throw new Error(`swtpm exited with ${child.exitCode} before creating ${file}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} did not appear`);
}

t.test('per-guest faults turn exactly their check red', async (t) => {
  const rig = healthRig();
  t.teardown(() => rig.cleanup());
  const guest: TestGuest = await defineGuest('g');
  t.teardown(() => removeGuest(guest));

  await virshOk(['start', guest.name]);
  await virshOk(['destroy', guest.name]);
  const perGuest = async () => {
    await rig.run();
    return {
      state: findingsFor(rig.check('guest-state'), guest.name),
      orphans: findingsFor(rig.check('orphans'), guest.name),
      resets: findingsFor(rig.check('tpm-reset'), guest.name),
      logs: findingsFor(rig.check('logs'), guest.name),
    };
  };

  await t.test('healthy guest: nothing about it', async (t) => {
    const r = await perGuest();
    t.same(r, { state: [], orphans: [], resets: [], logs: [] });
  });

  await t.test('state dir owned by the wrong user: C5 only', async (t) => {
    chownSync(guest.stateDir, 0, 0);
    try {
      const r = await perGuest();
      t.same(r.state.map((f) => f.reason), ['VTPM_HEALTH_STATE_WRONG_OWNER']);
      t.match(r.state[0]?.message, /is root:root 0700, not owned by the swtpm principal tss:tss/);
      t.equal(rig.check('guest-state')?.status, 'fail');
      t.same([r.orphans, r.resets, r.logs], [[], [], []]);
    } finally {
      chownSync(guest.stateDir, tss.uid, tss.gid);
    }
    t.same((await perGuest()).state, []);
  });

  await t.test('orphaned swtpm on the stopped guest\'s state: C6 says so, then the start fails and C10 sees why', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-orphan-'));
    chownSync(dir, tss.uid, tss.gid);
    const ctrl = path.join(dir, 'ctrl.sock');
    const orphan = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${guest.stateDir}`, '--ctrl', `type=unixio,path=${ctrl}`, '--flags', 'not-need-init'], {
      uid: tss.uid,
      gid: tss.gid,
      stdio: 'ignore',
    });
    t.teardown(() => {
      orphan.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    await waitForFile(ctrl, orphan);
    const r = await perGuest();
    t.same(r.orphans.map((f) => f.reason).sort(), ['VTPM_HEALTH_ORPHAN_LOCK_HOLDER', 'VTPM_HEALTH_ORPHAN_SWTPM']);
    t.ok(r.orphans.every((f) => f.details?.pid === orphan.pid), 'the hand-started swtpm is named');
    t.equal(rig.check('orphans')?.status, 'fail');
    t.same(r.state, [], 'the state itself is fine');

    const start = await virsh(['start', guest.name]);
    t.not(start.code, 0, 'libvirt cannot start the guest while the orphan holds the lock');
    t.match(start.stderr, /tpm-emulator: TPM result for CMD_INIT: 0x9 operation failed/);
    const after = await perGuest();
    t.same(after.logs.map((f) => f.details?.kind).sort(), ['libtpms_init_failed', 'lock_held', 'qemu_cmd_init_failed']);

    orphan.kill('SIGKILL');
    await new Promise((r) => orphan.once('exit', r));
    t.same((await perGuest()).orphans, []);
    await virshOk(['start', guest.name]);
    await virshOk(['destroy', guest.name]);
  });

  await t.test('TPM state dir deleted, then a start: seen as missing first, then one reset', async (t) => {
    rmSync(guest.stateDir, { recursive: true });
    const vanished = await perGuest();
    t.same(vanished.state.map((f) => f.reason), ['VTPM_HEALTH_STATE_MISSING']);
    t.same(vanished.resets.map((f) => f.details?.cause), ['state-vanished']);
    await virshOk(['start', guest.name]);
    t.equal(readFileSync(guest.swtpmLog, 'utf8').match(/Starting vTPM manufacturing/g)?.length, 2, 'libvirt re-manufactured');
    const after = await perGuest();
    t.same(after.resets.map((f) => f.details?.resets), [1], 'the re-manufacture is the same reset');
    t.same(after.state, []);
    await virshOk(['destroy', guest.name]);
  });

  await t.test('only the state file deleted: swtpm starts a blank TPM, caught by its size', async (t) => {
    rmSync(guest.permall);
    await virshOk(['start', guest.name]);
    const r = await perGuest();
    t.same(r.resets.map((f) => [f.details?.cause, f.details?.resets]), [['state-shrunk', 2]]);
    t.equal(rig.check('tpm-reset')?.status, 'fail');
  });

  await t.test('metrics: per-guest reset counter, check gauges, promtool-clean', async (t) => {
    const registry = new Registry();
    for (const p of healthProbes) p.registerMetrics?.(registry, rig.state);
    const text = await registry.metrics();
    t.match(text, new RegExp(`vtpm_health_tpm_resets_total\\{domain="${guest.name}",uuid="${guest.uuid}"\\} 2`));
    t.match(text, /vtpm_health_check_ok\{check="tpm-reset"\} 0/);
    t.match(text, /vtpm_health_check_status\{check="apparmor",status="not-applicable"\} 1/);
    t.match(text, /vtpm_component_version_info\{component="swtpm",version="\d/);
    const lint = promtoolCheckMetrics(text);
    t.equal(lint.code, 0, lint.output);
  });
});
