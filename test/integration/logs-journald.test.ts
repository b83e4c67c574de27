import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { requireCommands } from '../harness/components.js';
import { waitFor } from '../harness/agent.js';
import { LineBook, followerConfig, makeFollower } from '../harness/nova-log.js';

const JOURNAL_REMOTE = '/lib/systemd/systemd-journal-remote';

/**
 * journald without a journald daemon: systemd-journal-remote (Debian systemd-journal-remote)
 * appends entries in journal export format to a journal file, and the follower runs the real
 * `journalctl -f --directory`. journalctl -f only shows the current boot, so entries carry it.
 */
t.test('journald: follows a unit, resumes after the saved cursor, never counts twice', async (t) => {
  requireCommands('journalctl', JOURNAL_REMOTE);
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const journalDir = path.join(dir, 'journal');
  execFileSync('mkdir', ['-p', journalDir]);
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');
  let seq = 0;
  const append = (text: string, unit = 'nova-compute.service', boot = bootId) => {
    let exp = '';
    for (const line of text.split('\n').filter(Boolean)) {
      seq += 1;
      const priority = / ERROR /.test(line) ? 3 : 6;
      exp += `__REALTIME_TIMESTAMP=${Date.now() * 1000 + seq}\n__MONOTONIC_TIMESTAMP=${seq}\n_BOOT_ID=${boot}\n_SYSTEMD_UNIT=${unit}\n_PID=4242\nPRIORITY=${priority}\nMESSAGE=${line}\n\n`;
    }
    execFileSync(JOURNAL_REMOTE, [`--output=${path.join(journalDir, 'remote.journal')}`, '-'], { input: exp, stdio: ['pipe', 'ignore', 'ignore'] });
  };
  const book = new LineBook();
  const other = new LineBook();
  // The journal starts in an earlier boot: `journalctl -f` alone would never show these.
  append(book.batch(2), 'nova-compute.service', '0123456789abcdef0123456789abcdef');
  append(book.batch(1));
  append(other.batch(2), 'other.service');
  const state = path.join(dir, 'state.json');
  const config = followerConfig({ source: 'journald', unit: 'nova-compute.service', journalDirectory: journalDir });

  let f = makeFollower(config, state);
  await f.start();
  await waitFor('3 failures from the journal', () => f.incidents.totals.forbidden >= 3, 20_000, 100);
  append(book.batch(2));
  await waitFor('5 failures', () => f.incidents.totals.forbidden >= 5, 20_000, 100);
  t.equal(f.stats.following, true);
  await f.stop();
  t.equal(f.incidents.totals.forbidden, 5, 'only the unit asked for');

  // While the agent is down, more entries arrive; the restart resumes after the saved cursor.
  append(book.batch(2));
  f = makeFollower(config, state);
  await f.start();
  await waitFor('7 failures after the restart', () => f.incidents.totals.forbidden >= 7, 20_000, 100);
  append(book.batch(1));
  await waitFor('8 failures', () => f.incidents.totals.forbidden >= 8, 20_000, 100);
  // A marker entry after the last failure: once it is read, everything before it was too.
  append('2026-11-28 17:00:00.000 4242 WARNING nova.compute.manager [None req-00000000-0000-4000-8000-000000000000 - - - - - -] [instance: 99999999-9999-4999-8999-999999999999] Failed to resume instance');
  const seen: string[] = [];
  f.on('restart-failure', (r) => seen.push(r.instanceUuid));
  await waitFor('the marker entry', () => seen.length > 0, 20_000, 100);
  t.equal(f.incidents.totals.forbidden, book.written, 'every entry once');
  await f.stop();

  // The entry of the saved cursor was vacuumed away (other journal file, same times):
  // journalctl seeks by time and the follower goes on exactly after it.
  const saved = JSON.parse(readFileSync(state, 'utf8')) as { journalCursor: string };
  t.match(saved.journalCursor, /^s=[0-9a-f]+;i=/, 'a real cursor was saved');
  const vacuumed = { ...saved, journalCursor: saved.journalCursor.replace(/s=[0-9a-f]+/, 's=0123456789abcdef0123456789abcdef').replace(/i=[0-9a-f]+/, 'i=ffff') };
  writeFileSync(state, JSON.stringify(vacuumed));
  append(book.batch(1));
  f = makeFollower(config, state);
  await f.start();
  await waitFor('the entry after the vacuumed cursor', () => f.incidents.totals.forbidden >= book.written, 20_000, 100);
  await f.stop();
  t.equal(f.incidents.totals.forbidden, book.written, 'resumed exactly after the vacuumed entry');

  // A cursor journalctl cannot parse (damaged state): reported as lost, followed from the end,
  // and the journal is not counted again from its beginning.
  const damaged = JSON.parse(readFileSync(state, 'utf8')) as Record<string, unknown>;
  writeFileSync(state, JSON.stringify({ ...damaged, journalCursor: 'garbage' }));
  f = makeFollower(config, state);
  const markers: string[] = [];
  f.on('restart-failure', (r) => markers.push(r.instanceUuid));
  await f.start();
  await waitFor('the bad cursor reported', () => f.stats.lost > 0, 20_000, 100);
  // Keep adding marker entries until one is read: then the restarted journalctl is reading.
  await waitFor('following again', () => {
    append('2026-11-28 17:00:00.000 4242 WARNING nova.compute.manager [None req-00000000-0000-4000-8000-000000000000 - - - - - -] [instance: 88888888-8888-4888-8888-888888888888] Failed to resume instance');
    return markers.length > 0;
  }, 20_000, 300);
  t.equal(f.incidents.totals.forbidden, book.written, 'nothing counted twice after the fallback');
  await f.stop();
});

t.test('journald after a host reboot: the saved cursor is from the previous boot', async (t) => {
  requireCommands('journalctl', JOURNAL_REMOTE);
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const journalDir = path.join(dir, 'journal');
  execFileSync('mkdir', ['-p', journalDir]);
  const current = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');
  let seq = 0;
  const append = (text: string, boot: string) => {
    let exp = '';
    for (const line of text.split('\n').filter(Boolean)) {
      seq += 1;
      exp += `__REALTIME_TIMESTAMP=${Date.now() * 1000 + seq}\n__MONOTONIC_TIMESTAMP=${seq}\n_BOOT_ID=${boot}\n_SYSTEMD_UNIT=nova-compute.service\n_PID=4242\nPRIORITY=3\nMESSAGE=${line}\n\n`;
    }
    execFileSync(JOURNAL_REMOTE, [`--output=${path.join(journalDir, 'remote.journal')}`, '-'], { input: exp, stdio: ['pipe', 'ignore', 'ignore'] });
  };
  const book = new LineBook();
  const previousBoot = 'fedcba9876543210fedcba9876543210';
  append(book.batch(2), previousBoot);
  const state = path.join(dir, 'state.json');
  const config = followerConfig({ source: 'journald', unit: 'nova-compute.service', journalDirectory: journalDir });
  let f = makeFollower(config, state);
  await f.start();
  await waitFor('the previous boot read', () => f.incidents.totals.forbidden >= 2, 20_000, 100);
  await f.stop();
  const saved = JSON.parse(readFileSync(state, 'utf8')) as { journalCursor: string };
  t.match(saved.journalCursor, new RegExp(`b=${previousBoot}`), 'the cursor is in the previous boot');
  // The host rebooted; nova-compute logged its resume failures before the agent came up.
  append(book.batch(2), previousBoot); // the last lines of the old boot, after the agent stopped
  append(book.batch(3), current);
  f = makeFollower(config, state);
  await f.start();
  await waitFor('both boots read', () => f.incidents.totals.forbidden >= book.written, 20_000, 100);
  append(book.batch(1), current);
  await waitFor('following in the new boot', () => f.incidents.totals.forbidden >= book.written, 20_000, 100);
  await f.stop();
  t.equal(f.incidents.totals.forbidden, book.written, 'every entry of both boots, once');
  t.equal(book.written, 8);
});
