import { readFileSync, readdirSync } from 'node:fs';
import t from 'tap';
import { parseDomainCapabilities } from '../../src/libvirt/domcaps.js';

const dir = new URL('../fixtures/libvirt-domcaps/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, dir), 'utf8');

t.test('every upstream fixture parses', async (t) => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.xml') && f !== 'empty.xml');
  t.ok(files.length >= 15, 'fixtures are present');
  for (const file of files) {
    const caps = parseDomainCapabilities(fixture(file));
    t.ok(caps.arch, `${file}: has an arch`);
  }
});

t.test('QEMU 4.2 output has no <tpm> at all', async (t) => {
  const caps = parseDomainCapabilities(fixture('qemu_4.2.0-q35.x86_64.xml'));
  t.same(caps.tpm, { present: false, supported: false, models: [], backendModels: [], backendVersions: null });
});

t.test('libvirt 8.0 format: passthrough only, no backendVersion enum', async (t) => {
  const caps = parseDomainCapabilities(fixture('commit-6f7fc0b5/qemu_6.2.0-q35.x86_64.xml'));
  t.equal(caps.tpm.supported, true);
  t.same(caps.tpm.models, ['tpm-tis', 'tpm-crb']);
  t.same(caps.tpm.backendModels, ['passthrough']);
  t.equal(caps.tpm.backendVersions, null, 'absent enum is null, not empty');
});

t.test('backendVersion lists exactly what libvirt offers', async (t) => {
  t.same(parseDomainCapabilities(fixture('qemu_5.2.0-q35.x86_64.xml')).tpm.backendVersions, ['1.2']);
  t.same(parseDomainCapabilities(fixture('qemu_6.2.0-q35.x86_64.xml')).tpm.backendVersions, ['1.2', '2.0']);
  t.same(parseDomainCapabilities(fixture('qemu_7.2.0-tcg.x86_64.xml')).tpm.backendVersions, ['2.0']);
});

t.test('captured from libvirt 9.0 / QEMU 7.2 on Debian 12', async (t) => {
  const caps = parseDomainCapabilities(readFileSync(new URL('../fixtures/captured-libvirt9.0-qemu7.2-q35.xml', import.meta.url), 'utf8'));
  t.equal(caps.machine, 'pc-q35-7.2');
  t.same(caps.tpm, {
    present: true,
    supported: true,
    models: ['tpm-tis', 'tpm-crb'],
    backendModels: ['passthrough', 'emulator', 'external'],
    backendVersions: ['1.2', '2.0'],
  });
});

t.test("supported='no' and an empty model enum", async (t) => {
  const caps = parseDomainCapabilities(
    "<domainCapabilities><arch>x86_64</arch><devices><tpm supported='no'><enum name='model'/></tpm></devices></domainCapabilities>",
  );
  t.equal(caps.tpm.present, true);
  t.equal(caps.tpm.supported, false);
  t.same(caps.tpm.models, []);
});

t.test('malformed and foreign XML give a coded parse error', async (t) => {
  for (const bad of ['', '<domainCapabilities><devices>', 'not xml at all', '<capabilities/>', fixture('empty.xml').slice(0, 30)]) {
    t.throws(() => parseDomainCapabilities(bad), { code: 'VTPM_ERR_PARSE' }, JSON.stringify(bad.slice(0, 20)));
  }
});
