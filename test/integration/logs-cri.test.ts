import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CriJoiner } from '../../src/logs/cri.js';
import { LineBook, failureLine, followerConfig, makeFollower } from '../harness/nova-log.js';

/** Writes records the way containerd does: `<RFC3339Nano> stdout F|P <message>`, long lines split into P pieces. */
function cri(text: string, pieceBytes = 0): string {
  let out = '';
  const ts = () => new Date().toISOString().replace('Z', '123456Z');
  for (const line of text.split('\n').filter((l) => l.length > 0)) {
    if (pieceBytes > 0 && line.length > pieceBytes) {
      let rest = line;
      while (rest.length > pieceBytes) {
        out += `${ts()} stdout P ${rest.slice(0, pieceBytes)}\n`;
        rest = rest.slice(pieceBytes);
      }
      out += `${ts()} stdout F ${rest}\n`;
    } else {
      out += `${ts()} stderr F ${line}\n`;
    }
  }
  return out;
}

t.test('CRI: partial records, container restart into a new file, kubelet rotation, agent restart', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-cri-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const podDir = '/var/log/pods/openstack_nova-compute-default-x7k2p_0f8e2d44-1c1b-4c39-9a8e-3a5b0c2d1e4f';
  const containers = '/var/log/containers';
  mkdirSync(path.join(root, podDir, 'nova-compute'), { recursive: true });
  mkdirSync(path.join(root, podDir, 'init'), { recursive: true });
  mkdirSync(path.join(root, containers), { recursive: true });
  const host = (p: string) => path.join(root, p);
  const id1 = 'a'.repeat(64);
  const id2 = 'b'.repeat(64);
  const link = (id: string) => host(`${containers}/nova-compute-default-x7k2p_openstack_nova-compute-${id}.log`);
  // Links are absolute host paths, as kubelet makes them; the follower resolves them under the host root.
  symlinkSync(`${podDir}/nova-compute/0.log`, link(id1));
  symlinkSync(`${podDir}/init/0.log`, host(`${containers}/nova-compute-default-x7k2p_openstack_init-${'c'.repeat(64)}.log`));
  appendFileSync(host(`${podDir}/init/0.log`), cri(new LineBook().batch(3)));
  const log0 = host(`${podDir}/nova-compute/0.log`);
  const log1 = host(`${podDir}/nova-compute/1.log`);
  const book = new LineBook();
  const config = followerConfig({ source: 'cri' });
  const state = path.join(root, 'state', 'nova-log.json');

  appendFileSync(log0, cri(book.batch(4)));
  let f = makeFollower(config, state, root);
  await f.start();
  t.equal(f.stats.files.length, 1, 'only the nova-compute container, not the init container');
  t.equal(f.incidents.totals.forbidden, 4);

  // A long failure line split by containerd into P pieces; the F piece arrives later.
  const long = `${failureLine(1000)} ${'x'.repeat(5000)}`;
  const pieces = cri(long, 1024).split('\n').filter(Boolean);
  appendFileSync(log0, `${pieces.slice(0, 3).join('\n')}\n`);
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 4, 'an unfinished P sequence is not counted');
  await f.stop(); // agent restart in the middle of the sequence
  appendFileSync(log0, `${pieces.slice(3).join('\n')}\n`);
  f = makeFollower(config, state, root);
  await f.start();
  t.equal(f.incidents.totals.forbidden, 5, 'joined after the restart, counted once');

  // Container restart: the last lines of 0.log are still unread when 1.log and its link appear
  // and the old link goes away.
  appendFileSync(log0, cri(book.batch(2)));
  appendFileSync(log1, cri(book.batch(3)));
  unlinkSync(link(id1));
  symlinkSync(`${podDir}/nova-compute/1.log`, link(id2));
  await f.pollOnce();
  await f.pollOnce();
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 10, 'old file drained, new file read from its start');
  t.same(f.stats.files, [`${podDir}/nova-compute/1.log`], 'the old container log is let go');

  // kubelet rotation: rename 1.log to 1.log.<timestamp>; containerd reopens 1.log.
  appendFileSync(log1, cri(book.batch(1)));
  renameSync(log1, `${log1}.20261128-160000`);
  appendFileSync(`${log1}.20261128-160000`, cri(book.batch(1)));
  appendFileSync(log1, cri(book.batch(2)));
  await f.pollOnce();
  await f.pollOnce();
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 14, 'rotation: both files, once each');

  // Damaged records pass through whole instead of being dropped.
  appendFileSync(log1, `not a cri record ${failureLine(2000)}\n`);
  await f.pollOnce();
  t.equal(f.incidents.totals.forbidden, 15);
  t.equal(book.written + 1 + 1, 15);
  await f.stop();
});

t.test('CRI joiner: commit offset stays at the start of a pending sequence', async (t) => {
  const j = new CriJoiner();
  const got: string[] = [];
  const a = Buffer.from('2026-11-28T16:00:00.1Z stdout P abc\n2026-11-28T16:00:00.2Z stdout P def\n');
  t.equal(j.consume(a, 1000 + a.length, (r) => got.push(r.message.toString())), 1000, 'nothing complete: commit where the sequence began');
  const b = Buffer.from('2026-11-28T16:00:00.3Z stdout F ghi\n2026-11-28T16:00:00.4Z stderr F jkl\n');
  t.equal(j.consume(b, 1000 + a.length + b.length, (r) => got.push(r.message.toString())), 1000 + a.length + b.length);
  t.same(got, ['abcdefghi', 'jkl']);
});
