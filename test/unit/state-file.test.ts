import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { z } from 'zod';
import { StateFiles } from '../../src/util/state-file.js';

const schema = z.object({ version: z.literal(2), n: z.number() });

function setup(t: { teardown(fn: () => void): void }, readOnly = false) {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-state-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: Array<{ level: number; msg: string; path?: string; movedTo?: string }> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const files = new StateFiles({ log, readOnly });
  const file = path.join(dir, 'sub', 'doc.json');
  const doc = files.store('owner-a').file({ name: 'sub/doc', path: file, version: 2, schema, consequence: 'the counts are not kept' });
  return { dir, file, files, doc, lines };
}

t.test('absent, round trip, versioned', async (t) => {
  const { file, doc } = setup(t);
  t.same(await doc.load(), { value: null, problem: null, canSave: true }, 'absent: nothing, may save');
  await doc.save({ version: 2, n: 7 });
  t.same((await doc.load()).value, { version: 2, n: 7 });
  t.equal(readFileSync(file, 'utf8'), '{"version":2,"n":7}\n');
  t.same(readdirSync(path.dirname(file)), ['doc.json'], 'no temp file left');
});

t.test('corrupt and foreign-version files are set aside under one name scheme, with a warning', async (t) => {
  const { file, doc, lines, files } = setup(t);
  mkdirSync(path.dirname(file));
  for (const [content, what] of [['{"version":2,"n":', /is not JSON/], ['{"version":1,"n":1}', /has version 1, this agent reads version 2/], ['{"version":2,"n":"x"}', /did not match the expected format \(n:/]] as const) {
    writeFileSync(file, content);
    const r = await doc.load(Date.parse('2026-12-04T10:11:12.345Z'));
    t.equal(r.value, null);
    t.equal(r.canSave, true, 'the owner starts afresh');
    t.equal(r.setAsideTo, `${file}.corrupt-2026-12-04T10-11-12.345Z`);
    t.match(r.problem, what);
    t.equal(readFileSync(r.setAsideTo!, 'utf8'), content, 'the old content is kept for recovery by hand');
    const warning = lines.at(-1)!;
    t.equal(warning.level, 40, 'a warning');
    t.match(warning.msg, what);
    t.equal(warning.movedTo, r.setAsideTo);
    t.equal(files.problems().size, 0, 'set aside and started afresh: not a lasting problem');
  }
});

t.test('unreadable: named path, not saved over, owner not ready; clears when the path is usable again', async (t) => {
  const { file, doc, files } = setup(t);
  mkdirSync(file, { recursive: true });
  const r = await doc.load();
  t.equal(r.canSave, false);
  t.equal(r.problem, `cannot read ${file} (EISDIR); it is left as it is and not saved over; the counts are not kept`);
  t.same([...files.problems()], [['owner-a', [`sub/doc: ${r.problem}`]]]);
  rmSync(file, { recursive: true });
  t.equal((await doc.load()).canSave, true);
  t.equal(files.problems().size, 0, 'recovered by itself');
});

t.test('write failures: coded error naming the path, counted per file, owner not ready until a write works', async (t) => {
  const { file, doc, files, lines } = setup(t);
  const registry = new Registry();
  files.register(registry);
  const count = async () => (await registry.getSingleMetricAsString('vtpm_state_write_errors_total')).split('\n').find((l) => l.startsWith('vtpm_state_write_errors_total{'));
  t.equal(await count(), 'vtpm_state_write_errors_total{file="sub/doc"} 0', 'the series exists before any error');
  mkdirSync(file, { recursive: true });
  await t.rejects(doc.save({ version: 2, n: 1 }), { code: 'VTPM_ERR_STATE_WRITE', message: new RegExp(`cannot write ${file} \\(EISDIR\\); the counts are not kept; retrying`) });
  await t.rejects(doc.save({ version: 2, n: 1 }));
  t.equal(await count(), 'vtpm_state_write_errors_total{file="sub/doc"} 2');
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'logged once per change, not per failed write');
  t.match(files.problems().get('owner-a'), [/cannot write/]);
  t.equal((await doc.load()).canSave, false, 'the directory is unreadable too');
  rmSync(file, { recursive: true });
  await doc.load();
  t.ok(files.problems().has('owner-a'), 'a read that works does not clear a write problem');
  await doc.save({ version: 2, n: 1 });
  t.equal(files.problems().size, 0);
  t.match(lines.at(-1)!.msg, /usable again/);
});

t.test('an owner that no longer runs is forgotten: its problem does not keep the agent not ready', async (t) => {
  const { file, doc, files } = setup(t);
  mkdirSync(file, { recursive: true });
  await t.rejects(doc.save({ version: 2, n: 1 }));
  t.ok(files.problems().has('owner-a'));
  files.forget('owner-b');
  t.ok(files.problems().has('owner-a'), 'another owner forgotten: this one stays');
  files.forget('owner-a');
  t.equal(files.problems().size, 0, 'disabled by a reload: no problem left behind');
});

t.test('read-only (one-shot check): reads, never writes or moves', async (t) => {
  const { file, doc, files } = setup(t, true);
  await doc.save({ version: 2, n: 1 });
  t.throws(() => readFileSync(file), { code: 'ENOENT' }, 'nothing written');
  mkdirSync(path.dirname(file));
  writeFileSync(file, '{"version":2,"n":3}');
  t.same(await doc.load(), { value: { version: 2, n: 3 }, problem: null, canSave: false });
  writeFileSync(file, 'garbage');
  const r = await doc.load();
  t.match(r.problem, /is not JSON; read as empty .*the daemon sets it aside/);
  t.same(readdirSync(path.dirname(file)), ['doc.json'], 'nothing moved');
  t.equal(files.problems().size, 0);
});

t.test('stale temp files of killed writers go at the first load; a concurrent save of ours is not touched', async (t) => {
  const { file, doc } = setup(t);
  mkdirSync(path.dirname(file));
  writeFileSync(path.join(path.dirname(file), '.doc.json.999999.abcd.tmp'), 'x');
  writeFileSync(path.join(path.dirname(file), '.other.json.999999.abcd.tmp'), 'x');
  await Promise.all([doc.load(), doc.save({ version: 2, n: 1 }), doc.save({ version: 2, n: 2 })]);
  t.same(readdirSync(path.dirname(file)).sort(), ['.other.json.999999.abcd.tmp', 'doc.json'], 'only this file\'s temps of other processes');
});

t.test('two registries (two agents in one process) keep their own problems and counts', async (t) => {
  const a = setup(t);
  const b = setup(t);
  mkdirSync(a.file, { recursive: true });
  await t.rejects(a.doc.save({ version: 2, n: 1 }));
  t.equal(a.files.problems().size, 1);
  t.equal(b.files.problems().size, 0);
  const rb = new Registry();
  b.files.register(rb);
  t.match(await rb.getSingleMetricAsString('vtpm_state_write_errors_total'), /file="sub\/doc"} 0/);
});
