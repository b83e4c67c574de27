import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FileTail, type TailEvent } from '../../src/logs/file-tail.js';

/** Fails instead of hanging when an open blocks (a FIFO opened without O_NONBLOCK never returns). */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`blocked for more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
}

t.test('FIFOs named like rotated copies are skipped, never opened into a blocking read', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-tail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova-compute.log');
  writeFileSync(log, 'first line of the log\nsecond\n');
  mkfifo(`${log}.1`);
  const lines: string[] = [];
  const events: TailEvent[] = [];
  const tail = new FileTail({ file: log, startAt: 'beginning', sink: (b) => void lines.push(...b.toString().split('\n').filter(Boolean)), onEvent: (e) => events.push(e) });
  t.teardown(() => tail.close());
  await within(5000, tail.poll());
  t.same(lines, ['first line of the log', 'second']);
  // copytruncate: the file shrinks; the only sibling is a FIFO, which must not be opened.
  truncateSync(log, 0);
  appendFileSync(log, 'after truncation\n');
  await within(5000, tail.poll());
  t.same(lines, ['first line of the log', 'second', 'after truncation']);
  t.ok(events.some((e) => e.kind === 'rotated' && e.how === 'truncate'));
  t.notOk(events.some((e) => e.kind === 'recovered'), 'the FIFO was not taken for the copy');
  t.notOk(events.some((e) => e.kind === 'opened' && e.file.endsWith('.1')));
});

t.test('a FIFO handed over as a candidate (bypassing the listing) is still not read', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-tail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova-compute.log');
  const fifo = path.join(dir, 'copy');
  writeFileSync(log, 'aaaa\nbbbb\n');
  mkfifo(fifo);
  const events: TailEvent[] = [];
  const tail = new FileTail({ file: log, startAt: 'beginning', sink: () => undefined, rotatedCandidates: async () => [fifo], onEvent: (e) => events.push(e) });
  t.teardown(() => tail.close());
  await within(5000, tail.poll());
  truncateSync(log, 0);
  await within(5000, tail.poll());
  t.ok(events.some((e) => e.kind === 'lost'), 'no copy found: the loss is reported');
  t.notOk(events.some((e) => e.kind === 'opened' && e.file === fifo));
});

t.test('the followed name being a FIFO is treated as absent', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-tail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova-compute.log');
  mkfifo(log);
  const tail = new FileTail({ file: log, startAt: 'beginning', sink: () => undefined, position: { current: { dev: 1, ino: 1, offset: 0, head: '' }, previous: null } });
  t.teardown(() => tail.close());
  t.equal(await within(5000, tail.poll()), 0);
  t.equal(await within(5000, tail.poll()), 0);
  t.equal(tail.following, false);
});
