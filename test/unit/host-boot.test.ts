import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kernelBootId, readBootId, readBootTime } from '../../src/host/boot.js';
import { currentBootId } from '../../src/logs/journald.js';

t.test('boot id: read and checked; a missing file and a non-id are coded errors', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'boot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'boot_id');
  await writeFile(file, 'd5c3b1a0-1111-4222-8333-444455556666\n');
  t.equal(await readBootId(file), 'd5c3b1a0-1111-4222-8333-444455556666');
  await t.rejects(readBootId(path.join(dir, 'missing')), { code: 'VTPM_ERR_STATE_CORRUPT', message: /boot id cannot be read/ });
  await writeFile(file, 'not an id!\n');
  await t.rejects(readBootId(file), { code: 'VTPM_ERR_PARSE', message: /is not an id/ });
  t.equal(kernelBootId(file), null, 'the sync reader applies the same check');
  t.equal(kernelBootId(path.join(dir, 'missing')), null);
});

t.test('the kernel boot id: the same for the watcher and, without dashes, for journald', async (t) => {
  const real = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  t.equal(kernelBootId(), real);
  t.equal(currentBootId(), real.replace(/-/g, ''));
});

t.test('boot time from /proc/stat btime; null when absent or unreadable', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'boot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const stat = path.join(dir, 'stat');
  await writeFile(stat, 'cpu  1 2 3\nbtime 1764800000\nprocesses 5\n');
  t.equal(await readBootTime(stat), 1764800000);
  await writeFile(stat, 'cpu  1 2 3\n');
  t.equal(await readBootTime(stat), null);
  t.equal(await readBootTime(path.join(dir, 'missing')), null);
  t.type(await readBootTime('/proc/stat'), 'number', 'the real kernel has one');
});
