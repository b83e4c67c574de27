import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { scanLogs, LOG_STORE_FILE, type LogScanInput } from '../../src/health/checks/logs.js';
import { readNewLines } from '../../src/logs/read-since.js';
import { stateStore } from '../fixtures/state-files.js';
import type { HealthGuest } from '../../src/health/guests.js';
import { hostPathResolver } from '../../src/util/hostpath.js';

const fixtures = path.join(import.meta.dirname, '../fixtures/health');
const UUID = 'ac79bf0a-de07-4b0f-84d6-540c7cd5db58';
/** The time of the captured logs' last lines (and of block()'s manufactures) plus a little. */
const T0 = Date.parse('2026-11-28T18:00:00Z');

function setup(t: { teardown(fn: () => void): void }) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-logs-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dirs = { state: path.join(root, 'swtpm'), slog: path.join(root, 'swtpmlog'), qlog: path.join(root, 'qemulog'), agent: path.join(root, 'agent') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const guest: HealthGuest = { name: 'vtpmtest-health-probe0', uuid: UUID, tpmVersion: '2.0', encryptionSecret: null, running: true, nova: false, secretMode: 'unknown', secretPresent: null };
  const permall = path.join(dirs.state, UUID, 'tpm2', 'tpm2-00.permall');
  mkdirSync(path.dirname(permall), { recursive: true });
  const swtpmLog = path.join(dirs.slog, `${guest.name}-swtpm.log`);
  const qemuLog = path.join(dirs.qlog, `${guest.name}.log`);
  let now = T0;
  const daemon = stateStore('health-logs');
  const check = stateStore('health-logs', { readOnly: true });
  const input = (over: Partial<LogScanInput> = {}): LogScanInput => ({
    state: daemon,
    guests: [guest],
    swtpmStateDir: dirs.state,
    swtpmLogDir: dirs.slog,
    qemuLogDir: dirs.qlog,
    agentStateDir: dirs.agent,
    hostPath: hostPathResolver('/'),
    maxBytesPerFile: 1 << 20,
    windowSeconds: 3600,
    shrinkRatio: 0.5,
    now: (now += 1000),
    ...over,
  });
  return { dirs, guest, permall, swtpmLog, qemuLog, input, check };
}

const block = (uuid = UUID, ok = true) =>
  [
    'Starting vTPM manufacturing as tss:tss @ Sat 28 Nov 2026 06:00:00 PM UTC',
    `  Invoking /usr/bin/swtpm_localca --type ek --ek 00 --dir /tmp/x --vmid vtpmtest-health-probe0:${uuid} --tpm2`,
    ok ? 'Successfully authored TPM state.' : 'An error occurred. Authoring the TPM state failed.',
    'Ending vTPM manufacturing @ Sat 28 Nov 2026 06:00:01 PM UTC',
    '',
  ].join('\n');

t.test('captured log: second manufacture is a reset; lock and CMD_INIT failures attributed', async (t) => {
  const s = setup(t);
  copyFileSync(path.join(fixtures, 'captured-swtpm0.7.1-reset-and-lock.log'), s.swtpmLog);
  copyFileSync(path.join(fixtures, 'captured-qemu7.2-cmd-init-lock-held.log'), s.qemuLog);
  writeFileSync(s.permall, Buffer.alloc(6155));
  const out = await scanLogs(s.input());
  t.equal(out.guests[0]!.resets, 1);
  t.equal(out.guests[0]!.lastResetCause, 'remanufactured');
  t.equal(out.reset.status, 'fail');
  t.match(out.reset.findings[0]!.message, /vtpmtest-health-probe0/);
  // First read: the backlog is the baseline. Counted, but only lines with their own time (QEMU's
  // timestamp, the manufacture's "@ date") can be recent; swtpm's untimed lock lines are not "now".
  t.same(out.logs.findings.map((f) => f.details?.kind), ['qemu_cmd_init_failed']);
  t.equal(out.logs.findings[0]!.details?.lastAt, Date.parse('2026-11-28T17:37:22.923Z'), 'dated by the line, not the read');
  t.equal(out.reset.findings[0]!.details?.at, Date.parse('2026-11-28T17:37:19Z'), 'the reset is dated by its manufacture');
  t.same(out.guests[0]!.events, { lock_held: 1, libtpms_init_failed: 2, qemu_cmd_init_failed: 1 });
  t.equal(out.logs.status, 'fail');
  // The same failures appended after the baseline are new: recent, and attributed.
  appendFileSync(s.swtpmLog, 'SWTPM_NVRAM_Lock_Dir: Could not lock access to lockfile: Resource temporarily unavailable\nError: Could not initialize libtpms.\n');
  const fresh = await scanLogs(s.input());
  t.same(fresh.logs.findings.map((f) => f.details?.kind).sort(), ['libtpms_init_failed', 'lock_held', 'qemu_cmd_init_failed']);
  // Nothing new: same counts, nothing re-read.
  const again = await scanLogs(s.input());
  t.equal(again.guests[0]!.resets, 1);
  t.same(again.guests[0]!.events, fresh.guests[0]!.events);
  // Outside the window the check is green again; the counter stays.
  const later = await scanLogs(s.input({ now: T0 + 7200_000 }));
  t.equal(later.reset.status, 'pass');
  t.equal(later.logs.status, 'pass');
  t.equal(later.guests[0]!.resets, 1);
});

t.test('lost cursor store: the old backlog is re-read as baseline, not as recent failures', async (t) => {
  const s = setup(t);
  copyFileSync(path.join(fixtures, 'captured-swtpm0.7.1-reset-and-lock.log'), s.swtpmLog);
  copyFileSync(path.join(fixtures, 'captured-qemu7.2-cmd-init-lock-held.log'), s.qemuLog);
  writeFileSync(s.permall, Buffer.alloc(6155));
  await scanLogs(s.input());
  rmSync(path.join(s.dirs.agent, LOG_STORE_FILE));
  const later = await scanLogs(s.input({ now: T0 + 7200_000 }));
  t.equal(later.logs.status, 'pass', 'hours-old failures are not reported as recent');
  t.equal(later.reset.status, 'pass', 'an hours-old re-manufacture is not a recent reset');
  t.equal(later.guests[0]!.resets, 1, 'the baseline still counts it');
  t.same(later.guests[0]!.events, { lock_held: 1, libtpms_init_failed: 2, qemu_cmd_init_failed: 1 });
  // Untimed backlog (a manufacture date without a zone): the reset is counted but has no time.
  const s2 = setup(t);
  writeFileSync(s2.swtpmLog, (block() + block()).replace(/ UTC$/gm, ''));
  writeFileSync(s2.permall, Buffer.alloc(6155));
  const untimed = await scanLogs(s2.input());
  t.same([untimed.guests[0]!.resets, untimed.guests[0]!.lastResetAt, untimed.reset.status], [1, null, 'pass']);
});

t.test('a first-read backlog over the byte budget stays baseline over the runs that read it', async (t) => {
  const s = setup(t);
  writeFileSync(s.permall, Buffer.alloc(6155));
  const line = 'qemu-system-x86_64: tpm-emulator: could not send INIT: Broken pipe\n';
  writeFileSync(s.qemuLog, line.repeat(10));
  const budget = line.length * 4 + 1;
  for (let run = 0; run < 3; run++) t.equal((await scanLogs(s.input({ maxBytesPerFile: budget }))).logs.status, 'pass', `run ${run}`);
  appendFileSync(s.qemuLog, line);
  const out = await scanLogs(s.input({ maxBytesPerFile: budget }));
  t.equal(out.guests[0]!.events.qemu_init_send_failed, 11);
  t.same(out.logs.findings.map((f) => f.details?.kind), ['qemu_init_send_failed'], 'new after the baseline: recent');
});

t.test('first manufacture is not a reset; a new one appended later is', async (t) => {
  const s = setup(t);
  writeFileSync(s.swtpmLog, block());
  writeFileSync(s.permall, Buffer.alloc(6155));
  t.equal((await scanLogs(s.input())).guests[0]!.resets, 0);
  appendFileSync(s.swtpmLog, block());
  const out = await scanLogs(s.input());
  t.equal(out.guests[0]!.resets, 1);
  t.equal(out.reset.findings.length, 1);
});

t.test('state vanished, then re-manufactured: one reset, not two', async (t) => {
  const s = setup(t);
  writeFileSync(s.swtpmLog, block());
  writeFileSync(s.permall, Buffer.alloc(6155));
  await scanLogs(s.input());
  rmSync(path.dirname(s.permall), { recursive: true });
  const vanished = await scanLogs(s.input());
  t.equal(vanished.guests[0]!.resets, 1);
  t.equal(vanished.guests[0]!.lastResetCause, 'state-vanished');
  mkdirSync(path.dirname(s.permall));
  writeFileSync(s.permall, Buffer.alloc(6155));
  appendFileSync(s.swtpmLog, block());
  t.equal((await scanLogs(s.input())).guests[0]!.resets, 1);
  appendFileSync(s.swtpmLog, block());
  t.equal((await scanLogs(s.input())).guests[0]!.resets, 2, 'a later manufacture counts again');
});

t.test('state shrunk to a fresh blank TPM (only the file deleted): reset', async (t) => {
  const s = setup(t);
  writeFileSync(s.permall, Buffer.alloc(6155));
  await scanLogs(s.input());
  writeFileSync(s.permall, Buffer.alloc(1315));
  const out = await scanLogs(s.input());
  t.equal(out.guests[0]!.resets, 1);
  t.equal(out.guests[0]!.lastResetCause, 'state-shrunk');
  writeFileSync(s.permall, Buffer.alloc(1400));
  t.equal((await scanLogs(s.input())).guests[0]!.resets, 1, 'growing again is no reset');
});

t.test('failed re-manufacture retries are one reset; a manufacture for another domain of the same name is not this guest\'s', async (t) => {
  const s = setup(t);
  writeFileSync(s.swtpmLog, block());
  writeFileSync(s.permall, Buffer.alloc(6155));
  await scanLogs(s.input());
  rmSync(s.permall);
  appendFileSync(s.swtpmLog, block(UUID, false) + block(UUID, false) + block(UUID, true));
  const out = await scanLogs(s.input());
  t.equal(out.guests[0]!.resets, 1);
  t.ok(out.logs.findings.some((f) => f.details?.kind === 'authoring_failed'));

  const s2 = setup(t);
  writeFileSync(s2.swtpmLog, block('00000000-0000-0000-0000-000000000001') + block());
  writeFileSync(s2.permall, Buffer.alloc(6155));
  t.equal((await scanLogs(s2.input())).guests[0]!.resets, 0, 'the old domain\'s manufacture does not make the new one\'s first a reset');
});

t.test('rotation, partial lines, corrupt cursor store', async (t) => {
  const s = setup(t);
  writeFileSync(s.permall, Buffer.alloc(6155));
  writeFileSync(s.qemuLog, 'x\n'.repeat(100));
  await scanLogs(s.input());
  // Rotated: a new, shorter file (new inode).
  writeFileSync(`${s.qemuLog}.new`, 'qemu-system-x86_64: tpm-emulator: TPM result for CMD_INIT: 0x101 operation failed\n');
  renameSync(`${s.qemuLog}.new`, s.qemuLog);
  const rotated = await scanLogs(s.input());
  t.same(rotated.logs.findings.map((f) => f.details?.kind), ['qemu_cmd_init_failed']);
  // A partial line waits for its newline.
  appendFileSync(s.qemuLog, 'qemu-system-x86_64: tpm-emulator: could not send INIT');
  const partial = await scanLogs(s.input());
  t.equal(partial.guests[0]!.events.qemu_init_send_failed, undefined);
  appendFileSync(s.qemuLog, ': Broken pipe\n');
  t.equal((await scanLogs(s.input())).guests[0]!.events.qemu_init_send_failed, 1);
  // Garbage store: set aside, reported, scanning goes on.
  writeFileSync(path.join(s.dirs.agent, LOG_STORE_FILE), '{not json');
  const fresh = await scanLogs(s.input());
  t.match(fresh.storeProblem, /not JSON/);
  t.ok(fresh.logs.findings.some((f) => f.reason === 'VTPM_HEALTH_LOG_UNREADABLE'));
  const aside = readdirSync(path.join(s.dirs.agent, 'health')).filter((f) => /^logs\.json\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/.test(f));
  t.equal(aside.length, 1, 'set aside as <file>.corrupt-<time>');
  t.ok(readFileSync(path.join(s.dirs.agent, 'health', aside[0]!), 'utf8').startsWith('{not'));
  t.match(fresh.storeProblem, aside[0]!);
});

t.test('a store that exists but cannot be read is reported and not overwritten', async (t) => {
  const s = setup(t);
  writeFileSync(s.permall, Buffer.alloc(6155));
  writeFileSync(s.qemuLog, 'x\n');
  const storeFile = path.join(s.dirs.agent, LOG_STORE_FILE);
  mkdirSync(path.dirname(storeFile), { recursive: true });
  writeFileSync(storeFile, JSON.stringify({ version: 1, files: {}, guests: {} }));
  // A read error other than ENOENT (here EISDIR; EACCES/EIO alike): no fresh state saved over it.
  rmSync(storeFile);
  mkdirSync(storeFile);
  const out = await scanLogs(s.input());
  t.match(out.storeProblem, /cannot read .*EISDIR/, 'the read error is reported, not replaced by a write error');
  t.ok(out.logs.findings.some((f) => f.reason === 'VTPM_HEALTH_LOG_UNREADABLE'));
  t.same(readdirSync(path.join(s.dirs.agent, 'health')).filter((f) => f !== 'logs.json'), [], 'no temp file or copy left behind');
});

t.test('an aborted scan (probe timeout) throws between files and saves no partial state', async (t) => {
  const s = setup(t);
  writeFileSync(s.permall, Buffer.alloc(6155));
  writeFileSync(s.swtpmLog, block());
  writeFileSync(s.qemuLog, 'qemu-system-x86_64: tpm-emulator: could not send INIT: Broken pipe\n');
  const storeFile = path.join(s.dirs.agent, LOG_STORE_FILE);
  const ac = new AbortController();
  ac.abort(new Error('probe timed out'));
  await t.rejects(scanLogs(s.input({ signal: ac.signal })), /probe timed out/);
  t.throws(() => readFileSync(storeFile), { code: 'ENOENT' }, 'nothing saved');
  await scanLogs(s.input());
  const saved = readFileSync(storeFile, 'utf8');
  appendFileSync(s.swtpmLog, block());
  appendFileSync(s.qemuLog, 'qemu-system-x86_64: tpm-emulator: could not send INIT: Broken pipe\n');
  // Aborted once the swtpm log was read, before the QEMU log.
  const mid = new AbortController();
  const hostPath = (p: string) => {
    if (p === s.qemuLog) mid.abort(new Error('probe timed out'));
    return p;
  };
  await t.rejects(scanLogs(s.input({ signal: mid.signal, hostPath })), /probe timed out/);
  t.equal(readFileSync(storeFile, 'utf8'), saved, 'store untouched: the swtpm log will be read again, not skipped');
  const next = await scanLogs(s.input());
  t.equal(next.guests[0]!.resets, 1, 'the appended manufacture is counted once');
  t.equal(next.guests[0]!.events.qemu_init_send_failed, 2);
});

t.test('readNewLines: budget, overlong line, truncation', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-follow-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'log');
  writeFileSync(f, 'a\nbb\nccc\n');
  const r1 = await readNewLines(f, undefined, 5);
  t.same(r1.lines, ['a', 'bb']);
  t.ok(r1.more);
  const r2 = await readNewLines(f, r1.cursor, 5);
  t.same(r2.lines, ['ccc']);
  writeFileSync(f, 'x'.repeat(20) + '\nok\n');
  const r3 = await readNewLines(f, { ino: r2.cursor.ino, offset: 0 }, 8);
  t.same(r3.lines, [], 'an overlong line is skipped, not stalled on');
  t.equal(r3.cursor.offset, 8);
  writeFileSync(f, 'new\n');
  const r4 = await readNewLines(f, { ino: r3.cursor.ino, offset: 21 }, 100);
  t.ok(r4.rotated);
  t.same(r4.lines, ['new']);
  await t.rejects(readNewLines(path.join(dir, 'missing'), undefined, 10), { code: 'ENOENT' });
  // A FIFO at a log path (a mistake, or a hostile guest owner): refused at once, never blocked on.
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  await t.rejects(readNewLines(fifo, undefined, 10), { code: 'ENOTREG' });
  await t.rejects(readNewLines(dir, undefined, 10), { code: 'ENOTREG' }, 'a directory is not a log either');
});

t.test('undefined and redefined with the same UUID (Nova hard reboot before bug 2118888): still a reset', async (t) => {
  const s = setup(t);
  writeFileSync(s.swtpmLog, block());
  writeFileSync(s.permall, Buffer.alloc(6155));
  await scanLogs(s.input());
  // Undefined (libvirt < 8.9 deletes the TPM state with it): one run sees no such guest.
  rmSync(path.dirname(path.dirname(s.permall)), { recursive: true });
  const gone = await scanLogs(s.input({ guests: [] }));
  t.same(gone.guests, [], 'no series for a guest that is not defined');
  // Defined again and started: libvirt manufactures a new TPM.
  mkdirSync(path.dirname(s.permall), { recursive: true });
  writeFileSync(s.permall, Buffer.alloc(6155));
  appendFileSync(s.swtpmLog, block());
  const back = await scanLogs(s.input());
  t.same(back.guests.map((g) => [g.resets, g.lastResetCause]), [[1, 'remanufactured']]);
  // A guest away for longer than forgetAfterSeconds is forgotten: when it returns it is read like
  // a guest seen for the first time (its log history: 2 manufactures = 1 reset).
  await scanLogs(s.input({ guests: [], now: T0 + 10 * 86_400_000 }));
  const fresh = await scanLogs(s.input({ now: T0 + 10 * 86_400_000 + 1000 }));
  t.equal(fresh.guests[0]!.resets, 1, JSON.stringify(fresh.guests));
});

t.test('read-only (one-shot check): the daemon\'s store is read, never created, written or moved', async (t) => {
  const s = setup(t);
  copyFileSync(path.join(fixtures, 'captured-swtpm0.7.1-reset-and-lock.log'), s.swtpmLog);
  writeFileSync(s.permall, Buffer.alloc(6155));
  const storeFile = path.join(s.dirs.agent, LOG_STORE_FILE);
  const first = await scanLogs(s.input({ state: s.check }));
  t.equal(first.guests[0]!.resets, 1, 'the check still finds what the logs say');
  t.throws(() => readFileSync(storeFile), { code: 'ENOENT' }, 'no store created');
  // The daemon's own run saves; a later check reads that store and leaves it byte for byte.
  await scanLogs(s.input());
  const saved = readFileSync(storeFile, 'utf8');
  appendFileSync(s.swtpmLog, block());
  const checked = await scanLogs(s.input({ state: s.check }));
  t.equal(checked.guests[0]!.resets, 2, 'new lines since the daemon\'s cursor are read');
  t.equal(readFileSync(storeFile, 'utf8'), saved, 'store untouched');
  // A corrupt store is the daemon's to set aside.
  writeFileSync(storeFile, '{not json');
  const corrupt = await scanLogs(s.input({ state: s.check }));
  t.match(corrupt.storeProblem, /the daemon sets it aside/);
  t.same(readdirSync(path.dirname(storeFile)), ['logs.json'], 'nothing moved aside');
  t.equal(readFileSync(storeFile, 'utf8'), '{not json');
});
