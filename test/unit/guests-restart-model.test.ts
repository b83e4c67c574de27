import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { classifyFailure } from '../../src/guests/classify-failure.js';
import { parseEventLine } from '../../src/guests/events.js';
import { guestStateFiles } from '../../src/guests/state-files.js';
import { stateStore } from '../fixtures/state-files.js';
import { RestartReasons } from '../../src/guests/reasons.js';
import { swtpmFailureSince } from '../../src/guests/swtpm-log.js';
import { guest, inventory } from '../fixtures/guests.js';
import { evaluateWatch, snapshotFromInventory, snapshotSchema, startWatch, watchSchema, type Classifier, type Snapshot } from '../../src/guests/restart-model.js';


const classify: Classifier = (tr, cur, ctx) => classifyFailure(tr, cur, ctx, {});

t.test('snapshot keeps running guests only; a new boot tracks them all as pending', async (t) => {
  const inv = inventory([guest('a'), guest('b', { state: 'shutoff', stateReason: 'destroyed' }), guest('c', { state: 'paused' })]);
  const snap = snapshotFromInventory(inv, 'boot-1', 1000, 2_000_000);
  t.same(snap.guests.map((g) => g.uuid), ['a', 'c']);
  // boot after the snapshot: restart time counts from the boot
  const w = startWatch(snap, 'boot-2', 2100, 2_200_000, 60);
  t.equal(w.since, 2_100_000);
  t.equal(w.deadlineAt, 2_160_000);
  t.same(w.guests.map((g) => g.status), ['pending', 'pending']);
  // boot id switched without a later kernel boot (simulated): count from the watch start
  const w2 = startWatch(snap, 'boot-2', 1000, 2_200_000, 60);
  t.equal(w2.since, 2_200_000);
});

t.test('restarted, failed with reason, gone; decisions are made once', async (t) => {
  const snap: Snapshot = snapshotFromInventory(inventory([guest('a'), guest('b'), guest('c'), guest('d')]), 'boot-1', null, 0);
  let w = startWatch(snap, 'boot-2', null, 10_000, 60);
  const step1 = evaluateWatch(
    w,
    inventory([
      guest('a', { state: 'running', stateReason: 'booted', secretPresent: null }),
      guest('b', { state: 'shutoff', stateReason: 'failed' }),
      guest('c', { state: 'shutoff', stateReason: 'destroyed' }),
    ]),
    12_500,
    classify,
  );
  t.same(
    step1.transitions.map((x) => [x.uuid, x.outcome, x.reason, x.timeToRestartSeconds]),
    [
      ['a', 'restarted', null, 2.5],
      ['b', 'failed', 'secret_missing', null],
      ['d', 'gone', null, null],
    ],
  );
  w = step1.watch;
  t.equal(w.guests.find((g) => g.uuid === 'c')?.status, 'pending', 'never tried and before the deadline: pending');
  // the same inventory again decides nothing new
  const again = evaluateWatch(w, inventory([guest('a'), guest('b', { state: 'shutoff', stateReason: 'failed' }), guest('c', { state: 'shutoff', stateReason: 'destroyed' })]), 13_000, classify);
  t.same(again.transitions, []);
  const afterDaemonRestart = evaluateWatch(again.watch, inventory([guest('a'), guest('b', { state: 'shutoff', stateReason: 'unknown' }), guest('c', { state: 'shutoff', stateReason: 'unknown' })]), 14_000, classify);
  t.equal(afterDaemonRestart.watch.guests.find((g) => g.uuid === 'b')?.reason, 'secret_missing', 'a failed start is remembered across a libvirtd restart');
  // past the deadline, a never-tried user-mode guest whose secret is gone failed with secret_missing;
  // the detail names the secret mode behind it and the remedy
  const late = evaluateWatch(again.watch, inventory([guest('a'), guest('b', { state: 'running' }), guest('c', { state: 'shutoff', stateReason: 'destroyed' })]), 70_001, classify);
  t.same(late.transitions.map((x) => [x.uuid, x.outcome, x.reason]), [['c', 'failed', 'secret_missing']]);
  t.match(late.watch.guests.find((g) => g.uuid === 'c')?.detail, /secret mode "user".*hw:tpm_secret_security=host/);
  // libvirtd restarts: b's state reason becomes `unknown`, but its failed start is remembered
  const reset = evaluateWatch(late.watch, inventory([guest('a'), guest('b', { state: 'shutoff', stateReason: 'unknown' }), guest('c', { state: 'shutoff', stateReason: 'unknown' })]), 80_000, classify);
  t.equal(reset.watch.guests.find((g) => g.uuid === 'c')?.reason, 'secret_missing');
  const b = late.watch.guests.find((g) => g.uuid === 'b')!;
  t.equal(b.status, 'failed', 'a failed guest that came back later keeps its outcome');
  t.equal(b.down, false, 'but its still-down series ends');
  // the persisted form round-trips through the schema
  t.ok(watchSchema.safeParse(JSON.parse(JSON.stringify(late.watch))).success);
});

t.test('failure classification order', async (t) => {
  const snap = snapshotFromInventory(inventory([guest('a')]), 'b1', null, 0);
  const tracked = startWatch(snap, 'b2', null, 0, 1).guests[0]!;
  const down = guest('a', { state: 'shutoff', stateReason: 'failed' });
  t.equal(classifyFailure(tracked, down, { attempted: true }, { swtpmLine: 'Verification of HMAC failed' }).reason, 'swtpm_failed');
  t.equal(classifyFailure(tracked, down, { attempted: true }, {}).reason, 'secret_missing');
  t.equal(classifyFailure(tracked, { ...down, secretPresent: true }, { attempted: true }, {}).reason, 'user_secret_mode');
  t.equal(classifyFailure(tracked, { ...down, secretPresent: true, secretMode: 'host' }, { attempted: true }, {}).reason, 'unknown');
  t.equal(classifyFailure(tracked, { ...down, secretMode: 'host' }, { attempted: false }, {}).reason, 'secret_missing');
  t.equal(classifyFailure(tracked, { ...down, secretPresent: true }, { attempted: false }, {}).reason, 'user_secret_mode', 'user mode, secret still there, never tried');
  const external = { reason: 'barbican_access' as const, detail: '403 from Barbican' };
  t.same(classifyFailure(tracked, down, { attempted: true }, { external }), external);
  t.match(classifyFailure(tracked, down, { attempted: false }, {}).detail, /hw:tpm_secret_security=host/);
});

t.test('restart reason sources: first answer wins, a throwing source is ignored, unregister works, two agents do not share', async (t) => {
  const reasons = new RestartReasons();
  const other = new RestartReasons();
  const off1 = reasons.register({ reasonFor: () => { throw new Error('boom'); } });
  const off2 = reasons.register({ reasonFor: (id) => (id === 'x' ? { reason: 'barbican_access', detail: 'denied' } : undefined) });
  t.same(reasons.reasonFor('x'), { reason: 'barbican_access', detail: 'denied' });
  t.equal(reasons.reasonFor('y'), undefined);
  t.equal(other.reasonFor('x'), undefined, 'another agent in the same process does not see these sources');
  off2();
  off1();
  t.equal(reasons.reasonFor('x'), undefined);
});

t.test('event lines from virsh event --timestamp', async (t) => {
  const e = parseEventLine("2026-11-28 17:40:00.123+0000: event 'lifecycle' for domain 'vtpmtest-guests-a': Started Booted");
  t.same(e, { timestamp: Date.parse('2026-11-28T17:40:00.123Z'), domain: 'vtpmtest-guests-a', event: 'Started', detail: 'Booted' });
  t.same(parseEventLine("event 'lifecycle' for domain 'x y': Stopped Failed"), { timestamp: null, domain: 'x y', event: 'Stopped', detail: 'Failed' });
  t.equal(parseEventLine("2026-11-28 17:40:00.123+0000: event 'reboot' for domain 'x'"), null);
  t.equal(parseEventLine('events received: 3'), null);
});

t.test('persisted state: round trip, corrupt file moved aside, wrong version is corrupt', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guests-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stored = guestStateFiles(stateStore(), dir).snapshot;
  const file = path.join(dir, 'guests', 'snapshot.json');
  t.equal(stored.path, file);
  const snap: Snapshot = { version: 1, bootId: 'b1', bootTime: 5, takenAt: 6, guests: [] };
  t.same((await stored.load()).value, null, 'missing file: no value');
  await stored.save(snap);
  t.same((await stored.load()).value, snap);
  writeFileSync(file, '{"version":1,"bootId":"b1","guests":[{"uu');
  const r = await stored.load();
  t.equal(r.value, null);
  t.match(r.setAsideTo, /snapshot\.json\.corrupt-/);
  t.same(readdirSync(path.dirname(file)).filter((f) => f === 'snapshot.json'), [], 'the corrupt file is no longer in the way');
  writeFileSync(file, JSON.stringify({ ...snap, version: 2 }));
  t.equal((await stored.load()).value, null);
  t.same(readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp')), [], 'no temp files left behind');
});

t.test('swtpm log: only lines written since the watch began count', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guests-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'vm1-swtpm.log'), 'Starting vTPM manufacturing\nSWTPM_NVRAM_LoadData: Error from SWTPM_NVRAM_GetDecryptedData rc = 33\nlibtpms/tpm2: Entering failure mode; code: 3\n');
  t.match(await swtpmFailureSince(dir, 'vm1', 0), /GetDecryptedData/);
  t.equal(await swtpmFailureSince(dir, 'vm1', Date.now() + 60_000), null);
  t.equal(await swtpmFailureSince(dir, 'nosuch', 0), null);
  writeFileSync(path.join(dir, 'vm2-swtpm.log'), 'Data client disconnected\n');
  t.equal(await swtpmFailureSince(dir, 'vm2', 0), null);
});

t.test('swtpm log: a FIFO, a symlink to one or a directory at the log path is skipped, never blocks', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guests-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'vm1-swtpm.log');
  const made = spawnSync('mkfifo', [fifo]);
  t.equal(made.status, 0, `mkfifo: ${made.stderr?.toString() ?? made.error?.message}`);
  symlinkSync(fifo, path.join(dir, 'vm2-swtpm.log'));
  mkdirSync(path.join(dir, 'vm3-swtpm.log'));
  for (const name of ['vm1', 'vm2', 'vm3']) {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      swtpmFailureSince(dir, name, 0),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('blocked'), 3000))),
    ]);
    clearTimeout(timer);
    if (result === 'blocked') {
      // Unblock the stuck reader so the test process can exit.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    }
    t.equal(result, null, `${name}: not a regular file, skipped at once`);
  }
});
