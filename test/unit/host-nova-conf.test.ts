import t from 'tap';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadNovaSettings, novaSettings } from '../../src/host/nova-conf.js';
import { readResumeFlag } from '../../src/guests/inventory.js';
import { parseIni } from '../../src/util/ini.js';

const settings = (text: string) => novaSettings(parseIni(text), ['/etc/nova/nova.conf'], []);

t.test('[DEFAULT] host: the last occurrence wins, other sections and empty values do not count', async (t) => {
  const conf = ['[DEFAULT]', 'debug = true', 'host = first.example.org', '[libvirt]', 'host = not-this-one', '[DEFAULT]', 'host = compute-01.example.org', ''].join('\n');
  t.equal(settings(conf).host, 'compute-01.example.org');
  t.equal(settings('[DEFAULT]\ndebug = true\n[libvirt]\nhost = x\n').host, null);
  t.equal(settings('[DEFAULT]\nhost =\n').host, null, 'an empty value means unset');
  t.equal(settings('').host, null);
});

t.test('[DEFAULT] resume_guests_state_on_host_boot: oslo booleans, last wins, default false', async (t) => {
  t.equal(settings('[DEFAULT]\nresume_guests_state_on_host_boot = True\n').resumeGuestsStateOnHostBoot, true);
  t.equal(settings('[DEFAULT]\n#resume_guests_state_on_host_boot = true\n').resumeGuestsStateOnHostBoot, false);
  t.equal(settings('[libvirt]\nresume_guests_state_on_host_boot = true\n').resumeGuestsStateOnHostBoot, false);
  t.equal(settings('[DEFAULT]\nresume_guests_state_on_host_boot=true\nresume_guests_state_on_host_boot = false\n').resumeGuestsStateOnHostBoot, false);
  const bad = settings('[DEFAULT]\nresume_guests_state_on_host_boot = maybe\n');
  t.equal(bad.resumeGuestsStateOnHostBoot, false, 'a value oslo.config rejects falls back to the default');
  t.same(bad.invalid, [{ option: '[DEFAULT] resume_guests_state_on_host_boot', value: 'maybe' }], 'and is named');
});

t.test('files: later ones override, missing ones are skipped, unreadable ones named; none at all is null', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'nova-conf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = path.join(dir, 'nova.conf');
  const b = path.join(dir, 'nova-compute.conf');
  await writeFile(a, '[DEFAULT]\nhost = a\nresume_guests_state_on_host_boot = true\n');
  await writeFile(b, '[DEFAULT]\nhost = b\n');
  const both = await loadNovaSettings([a, path.join(dir, 'missing.conf'), b], (p) => p);
  t.equal(both?.host, 'b', 'the later file overrides');
  t.equal(both?.resumeGuestsStateOnHostBoot, true, 'options only the earlier file sets stay');
  t.same(both?.files, [a, b]);
  t.equal(await loadNovaSettings([path.join(dir, 'missing.conf')], (p) => p), null);
  t.same(await readResumeFlag(a), { resume: true, error: null }, 'the guest inventory reads the flag through the same reader');
  t.same(await readResumeFlag(path.join(dir, 'missing.conf')), { resume: null, error: null }, 'no nova.conf: not judged');
  t.same(await readResumeFlag(null), { resume: null, error: null });
  t.same(await readResumeFlag(dir), { resume: null, error: `${dir}: EISDIR` }, 'there but unreadable: not judged, and said why');
  if (process.getuid?.() === 0) return; // root reads a mode-000 file
  await chmod(b, 0o000);
  const partly = await loadNovaSettings([a, b], (p) => p);
  t.same(partly?.unreadable, [{ path: b, error: 'EACCES' }]);
});
