import { copyFileSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync, appendFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { LineBook, followerConfig, makeFollower } from '../harness/nova-log.js';

/**
 * The file source on real files: every failure line is unique and 200 s of log time from the
 * next, so the forbidden count equals the number of failure lines read — a line missed or read
 * twice changes it.
 */
t.test('plain file: partial lines, rotation by rename and copytruncate, garbage, restarts and a crash', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova-compute.log');
  const state = path.join(dir, 'state', 'nova-log.json');
  const book = new LineBook();
  const config = followerConfig({ source: 'file', path: log });

  // The writer keeps its descriptor, like nova-compute's WatchedFileHandler between two records.
  let fd = openSync(log, 'a');
  const write = (text: string) => writeSync(fd, text);

  let f = makeFollower(config, state);
  await f.start();
  t.equal(f.stats.following, true);

  write(book.batch(5));
  const next = book.batch(1);
  const cut = next.length - 40;
  write(next.slice(0, cut)); // a failure line without its end
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 5, 'the unfinished line is not counted yet');
  write(next.slice(cut));
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 6, 'counted once it is complete');

  // Rotation by rename; the writer appends to the renamed file before it reopens.
  renameSync(log, `${log}.1`);
  write(book.batch(2));
  closeSync(fd);
  fd = openSync(log, 'a');
  write(book.batch(3));
  await f.pollOnce();
  await f.pollOnce();
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 11, 'rename rotation: old tail and new file, once each');
  t.ok(f.stats.rotations >= 1);

  // A restart in the middle, with a copytruncate while the agent is down.
  write(book.batch(2));
  await f.stop();
  write(book.batch(2)); // unread when the copy is taken
  renameSync(`${log}.1`, `${log}.2`);
  copyFileSync(log, `${log}.1`);
  truncateSync(log, 0);
  write(book.batch(2));
  f = makeFollower(config, state);
  await f.start();
  t.equal(f.incidents.totals.forbidden, 17, 'copytruncate while down: the copy supplies the unread lines');

  // copytruncate while running.
  write(book.batch(1));
  await f.pollOnce();
  write(book.batch(2));
  rmSync(`${log}.2`);
  renameSync(`${log}.1`, `${log}.2`);
  copyFileSync(log, `${log}.1`);
  truncateSync(log, 0);
  write(book.batch(1));
  await f.pollOnce();
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 21, 'copytruncate while running');

  // Binary garbage, an overlong line, invalid UTF-8: nothing crashes, nothing counts.
  const garbage = Buffer.alloc(300_000);
  for (let i = 0; i < garbage.length; i += 1) garbage[i] = (i * 7919) % 251;
  write(Buffer.concat([garbage, Buffer.from('\n\xff\xfe\x00 barbican\n')]).toString('latin1'));
  write(book.batch(1));
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 22, 'the line after the garbage counts');

  // A crash: the state on disk is older than what was processed. Replaying from it gives the
  // same totals, because positions and counts were saved together.
  write(book.batch(2));
  await f.pollOnce();
  const before = readFileSync(state);
  write(book.batch(3));
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 27);
  await f.stop();
  writeFileSync(state, before); // the last save never happened
  f = makeFollower(config, state);
  await f.start();
  t.equal(f.incidents.totals.forbidden, 27, 'after a crash: replayed, not double counted');

  // Rotation by rename while down, then deletion of an unrelated old copy.
  write(book.batch(1));
  await f.stop();
  closeSync(fd);
  renameSync(log, `${log}.1`);
  appendFileSync(log, book.batch(2));
  f = makeFollower(config, state);
  await f.start();
  t.equal(f.incidents.totals.forbidden, book.written, 'rename while down: old tail, then the new file');
  t.equal(book.written, 30);
  t.equal(f.stats.lost, 0, 'nothing reported lost');
  await f.stop();

  // A corrupt state file is reported and the follower starts afresh instead of crashing.
  writeFileSync(state, '{not json');
  f = makeFollower(followerConfig({ source: 'file', path: log, startAt: 'end' }), state);
  await f.start();
  t.equal(f.stats.lastError?.code, 'VTPM_ERR_STATE_CORRUPT');
  t.equal(f.incidents.totals.forbidden, 0, 'fresh start at the end: history is not counted');
  appendFileSync(log, book.batch(1));
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 1);
  await f.stop();
});

t.test('a log that does not exist yet is followed once it appears', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova', 'nova-compute.log');
  const f = makeFollower(followerConfig({ source: 'file', path: log, startAt: 'end' }), path.join(dir, 'state.json'));
  await f.start();
  t.equal(f.stats.following, false);
  const book = new LineBook();
  rmSync(path.dirname(log), { recursive: true, force: true });
  await import('node:fs').then((fs) => fs.mkdirSync(path.dirname(log)));
  appendFileSync(log, book.batch(2));
  await f.pollOnce();
  t.equal(f.stats.following, true);
  t.equal(f.incidents.totals.forbidden, 2, 'a file created after the start is read from its beginning');
  await f.stop();
});

t.test('stopping during a long first read loses and repeats nothing', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova-compute.log');
  const state = path.join(dir, 'state.json');
  const book = new LineBook();
  // About 40 MiB: many chunks, so the stop lands in the middle of the read.
  for (let i = 0; i < 20; i += 1) appendFileSync(log, book.batch(200, 40));
  const config = followerConfig({ source: 'file', path: log });
  let f = makeFollower(config, state);
  // Stop as soon as the first failure is counted, i.e. in the middle of the first read.
  let stopping: Promise<void> | null = null;
  f.once('incident', () => {
    stopping = f.stop();
  });
  await f.start();
  await stopping;
  const partial = f.incidents.totals.forbidden;
  t.ok(partial > 0 && partial < book.written, `interrupted after ${partial} of ${book.written} failures`);
  f = makeFollower(config, state);
  await f.start();
  await f.stop();
  t.equal(f.incidents.totals.forbidden, book.written, 'resumed exactly where the interrupted read stopped');
});
