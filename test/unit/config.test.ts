import { chmodSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { renderConfigExample } from '../../src/config/example.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const noEnv = { VTPM_AGENT_CONFIG: undefined } as NodeJS.ProcessEnv;

t.test('no file at the default path: defaults', async (t) => {
  const { config, source } = await loadConfig({ env: { VTPM_AGENT_CONFIG: undefined }, path: undefined });
  t.ok(source === null || source === '/etc/vtpm-agent/config.yaml');
  t.equal(config.listen.port, 9643);
  t.equal(config.libvirt.uri, 'qemu:///system');
  t.same(config.libvirt.machineTypes, ['default', 'q35']);
  t.equal(config.swtpm.user, null, 'null: libvirt\'s own choice (qemu.conf, else tss)');
});

t.test('file, env and --set overrides apply in that order', async (t) => {
  const p = file('ok.yaml', 'listen:\n  port: 9000\nlibvirt:\n  uri: qemu:///session\nlogLevel: debug\n');
  const { config, source } = await loadConfig({
    path: p,
    env: { ...noEnv, VTPM_AGENT__LISTEN__PORT: '9001', VTPM_AGENT__SWTPM__USER: 'swtpm' },
    overrides: ['listen.port=9002'],
  });
  t.equal(source, p);
  t.equal(config.listen.port, 9002);
  t.equal(config.swtpm.user, 'swtpm');
  t.equal(config.libvirt.uri, 'qemu:///session');
  t.equal(config.logLevel, 'debug');
});

t.test('unknown keys and bad values: every problem at once, each with its path', async (t) => {
  const p = file('bad.yaml', 'listen:\n  port: "nine"\n  hots: 1.2.3.4\nlibvirt:\n  virtType: xen\nprobes:\n  schedule: "every minute"\nbogus: 1\n');
  const err = (await loadConfig({ path: p, env: noEnv }).catch((e: unknown) => e)) as ConfigError;
  t.type(err, ConfigError);
  t.equal(err.code, 'VTPM_ERR_CONFIG_INVALID');
  t.match(err.message, /listen\.port/);
  t.match(err.message, /listen: unknown key\(s\) "hots"/);
  t.match(err.message, /libvirt\.virtType/);
  t.match(err.message, /probes\.schedule: must be a cron expression/);
  t.match(err.message, /\(root\): unknown key\(s\) "bogus"/);
  t.equal(err.issues.length, 5);
});

t.test('every cron setting is validated by node-cron itself: an out-of-range field is a config error, not a crash at start', async (t) => {
  const keys = ['probes.schedule', 'emulation.schedule', 'guests.inventorySchedule', 'health.schedule', 'identity.schedule', 'placement.schedule'];
  for (const key of keys) {
    const err = (await loadConfig({ env: noEnv, overrides: [`${key}=99 * * * *`] }).catch((e: unknown) => e)) as ConfigError;
    t.type(err, ConfigError, key);
    t.match(err.message, new RegExp(`${key.replace('.', '\\.')}: must be a cron expression`), key);
    const ok = await loadConfig({ env: noEnv, overrides: [`${key}=*/7 * * * *`] });
    t.ok(ok.config, `${key}: a valid expression loads`);
  }
});

t.test('invalid YAML, non-mapping, unreadable explicit file', async (t) => {
  await t.rejects(loadConfig({ path: file('y.yaml', 'a: [1,\n'), env: noEnv }), { code: 'VTPM_ERR_CONFIG_INVALID', message: /not valid YAML/ });
  await t.rejects(loadConfig({ path: file('l.yaml', '- 1\n- 2\n'), env: noEnv }), { message: /must be a mapping/ });
  await t.rejects(loadConfig({ path: path.join(dir, 'missing.yaml'), env: noEnv }), { message: /cannot read configuration file/ });
  await t.rejects(loadConfig({ env: noEnv, overrides: ['novalue'] }), { message: /expected key\.path=value/ });
});

t.test('an empty file means defaults', async (t) => {
  const { config } = await loadConfig({ path: file('empty.yaml', ''), env: noEnv });
  t.equal(config.listen.port, 9643);
});

t.test('config.example.yaml is current, valid and documents the defaults', async (t) => {
  const example = new URL('../../config.example.yaml', import.meta.url).pathname;
  t.equal(readFileSync(example, 'utf8'), renderConfigExample(), 'regenerate with: npx tsx scripts/gen-config-example.ts');
  const { config } = await loadConfig({ path: example, env: noEnv });
  const defaults = (await loadConfig({ path: file('e2.yaml', ''), env: noEnv })).config;
  t.same(config, defaults, 'the example sets every option to its default');
});

t.test('a config file holding OpenStack secrets that others can read gives a warning', async (t) => {
  const p = file('secret.yaml', 'openstack:\n  auth:\n    authUrl: http://127.0.0.1:5000/v3\n    password: s3cret\n');
  chmodSync(p, 0o644);
  const open = await loadConfig({ path: p, env: noEnv });
  t.match(open.warnings, [/secret\.yaml holds OpenStack secrets and is readable by others \(mode 0644\)/]);
  t.notOk(open.warnings.join('').includes('s3cret'), 'the warning does not quote the secret');
  chmodSync(p, 0o600);
  t.same((await loadConfig({ path: p, env: noEnv })).warnings, []);
});

t.test('health toggles are the check ids; the former names and env spellings still work', async (t) => {
  const p = file('toggles.yaml', 'health:\n  checks:\n    guest-state: false\n    nova: false\n');
  const { config } = await loadConfig({ path: p, env: { ...noEnv, VTPM_AGENT__HEALTH__CHECKS__TPM_RESET: 'false' }, overrides: ['health.checks.orphans=false'] });
  t.equal(config.health.checks['guest-state'], false);
  t.equal(config.health.checks['nova-config'], false, 'nova: the name before it was the check id');
  t.equal(config.health.checks['tpm-reset'], false, 'TPM_RESET from the environment');
  t.equal(config.health.checks.orphans, false);
  t.equal(config.health.checks.logs, true);
  t.notOk('nova' in config.health.checks);
  const both = file('both.yaml', 'health:\n  checks:\n    guestState: false\n    guest-state: true\n');
  t.equal((await loadConfig({ path: both, env: noEnv })).config.health.checks['guest-state'], true, 'the check id wins over an alias');
});
