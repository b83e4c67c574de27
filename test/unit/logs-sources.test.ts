import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import type { ExtensionContext } from '../../src/extension-api.js';
import { wildcardToRegExp } from '../../src/logs/cri.js';
import { NovaLogExtension } from '../../src/logs/extension.js';
import { cursorBoot, cursorSeq, journalctlArgs, parseJournalLine } from '../../src/logs/journald.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { promtoolCheckMetrics } from '../harness/promtool.js';
import { LineBook } from '../harness/nova-log.js';
import { contextTools } from '../fixtures/state-files.js';

t.test('journalctl JSON lines become typed entries; junk is skipped', async (t) => {
  const e = parseJournalLine('{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1764345600123456","_PID":"42","PRIORITY":"3","MESSAGE":"Key manager error: Forbidden"}');
  t.same(e, { cursor: 's=1;i=2', ts: 1764345600123, pid: 42, level: 'ERROR', message: 'Key manager error: Forbidden' });
  const bytes = parseJournalLine(JSON.stringify({ __CURSOR: 'c', MESSAGE: [...Buffer.from('caf\xe9 barbican', 'latin1')], PRIORITY: '4' }));
  t.equal(bytes?.level, 'WARNING');
  t.match(bytes?.message, /barbican$/, 'a byte-array MESSAGE (not UTF-8) is decoded with replacement');
  t.equal(parseJournalLine('{"MESSAGE":"no cursor"}'), null);
  t.equal(parseJournalLine('not json'), null);
  t.equal(parseJournalLine('{"__CURSOR":"c","MESSAGE":null}')?.message, '', 'an oversized MESSAGE (null) is empty');
  t.same(journalctlArgs({ unit: 'nova-compute.service', directory: null, follow: true, cursor: null, lines: '0' }), ['-o', 'json', '-f', '--no-pager', '-u', 'nova-compute.service', '-n', '0']);
  t.same(journalctlArgs({ unit: 'u', directory: '/host/var/log/journal', follow: false, cursor: 's=1', lines: 'all' }), ['-o', 'json', '--no-pager', '-u', 'u', '--directory=/host/var/log/journal', '--after-cursor=s=1']);
  t.equal(cursorBoot('s=ab;i=2;b=95cf6c02fb82444789880fb4744ac211;m=7d0;t=644a;x=2d'), '95cf6c02fb82444789880fb4744ac211');
  t.equal(cursorBoot('garbage'), null);
  t.same(cursorSeq('s=30ffde37;i=1f;b=95cf;m=7;t=66;x=ac'), { id: '30ffde37', n: 31n });
});

t.test('CRI link patterns', async (t) => {
  const re = wildcardToRegExp('nova-compute-*.log');
  t.ok(re.test('nova-compute-default-x7k2p_openstack_nova-compute-abc.log'));
  t.notOk(re.test('libvirt-default-x_openstack_libvirt-abc.log'));
  t.notOk(wildcardToRegExp('a.log').test('aXlog'), 'dots are literal');
});

t.test('extension: status, metrics lint, check does not move the saved position', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logs-ext-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'nova-compute.log');
  appendFileSync(log, new LineBook().batch(3));
  // One failure stamped now: the check is red for failures of the last day.
  const now = new Date().toISOString();
  appendFileSync(log, `${now.slice(0, 10)} ${now.slice(11, 23)} 4242 ERROR castellan.key_manager.barbican_key_manager [None req-00000000-1111-4222-8333-444444444444 - - - - - -] Error retrieving object: Forbidden: Secret payload retrieval attempt not allowed\n`);
  const config = configSchema.parse({ stateDir: path.join(dir, 'state'), novaLog: { source: 'file', path: log, startAt: 'beginning', pollIntervalSeconds: 60 } });
  const ctx: ExtensionContext = { config, log: pino({ level: 'silent' }), hostPath: hostPathResolver('/'), env: process.env, state: new HostState(), ...contextTools(), signal: new AbortController().signal };

  const check = new NovaLogExtension();
  t.equal(check.enabled(config), true);
  t.equal(new NovaLogExtension().enabled(configSchema.parse({})), false, 'off by default (source none)');
  const section = await check.checkOnce(ctx);
  t.equal((section.data as { totals: { forbidden: number } }).totals.forbidden, 4);
  t.equal(section.ok, false, 'a failure of the last day: not ok');
  t.notOk(existsSync(path.join(dir, 'state', 'nova-log.json')), 'check wrote no state');

  const ext = new NovaLogExtension();
  const registry = new Registry();
  ext.registerMetrics(registry);
  await ext.start(ctx);
  await ext.started();
  t.teardown(() => ext.stop());
  t.match(ext.status().summary, /following file .*: 4 Barbican failure/);
  const text = await registry.metrics();
  t.match(text, /vtpm_barbican_failures_total\{source="log",reason="forbidden"\} 4/, 'the daemon counts what check only looked at');
  t.match(text, /vtpm_nova_log_up\{source="file"\} 1/);
  const lint = promtoolCheckMetrics(text);
  t.equal(lint.code, 0, lint.output);
  await ext.stop();
  t.ok(existsSync(path.join(dir, 'state', 'nova-log.json')), 'the daemon saved its position');
});
