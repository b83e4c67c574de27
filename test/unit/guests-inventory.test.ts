import { readFileSync } from 'node:fs';
import t from 'tap';
import { atRiskGuests, inferSecretMode, riskReasons } from '../../src/guests/classify.js';
import { parseDomainXml } from '../../src/guests/domain-xml.js';
import { buildInventory, type InventoryRaw } from '../../src/guests/inventory.js';
import { parseDomState, parseDomStats, parseSecretList, parseSecretXml, parseUuidList, stripPrompts } from '../../src/guests/virsh-text.js';

const fx = (name: string) => readFileSync(new URL(`../fixtures/guests/${name}`, import.meta.url), 'utf8');

t.test('parses Nova 1.1 metadata with extra specs and an encrypted TPM', async (t) => {
  const d = parseDomainXml(fx('nova-1.1-host.xml'));
  t.equal(d.uuid, '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f');
  t.equal(d.name, 'instance-0000002a');
  t.same(d.tpm, { model: 'tpm-crb', version: '2.0', encryptionSecret: 'aa11bb22-cc33-4d44-8e55-ff6677889900' });
  t.equal(d.nova?.namespaceVersion, '1.1');
  t.equal(d.nova?.instanceName, 'db-primary');
  t.equal(d.nova?.flavorName, 'm1.vtpm.host');
  t.equal(d.nova?.projectId, '9e8d7c6b5a4f4e3d2c1b0a9f8e7d6c5b');
  t.equal(d.nova?.projectName, 'tenant-a');
  t.same(d.nova?.extraSpecs, { 'hw:tpm_version': '2.0', 'hw:tpm_model': 'tpm-crb', 'hw:tpm_secret_security': 'host' });
});

t.test('matches Nova 1.0 metadata by namespace URI, whatever the prefix', async (t) => {
  const d = parseDomainXml(fx('nova-1.0-user.xml'));
  t.equal(d.nova?.namespaceVersion, '1.0');
  t.equal(d.nova?.instanceName, 'legacy-vm');
  t.equal(d.nova?.projectName, 'tenant-b');
  t.same(d.nova?.extraSpecs, {});
  t.same(d.tpm, { model: 'tpm-tis', version: '1.2', encryptionSecret: '12345678-aaaa-4bbb-8ccc-ddddeeeeffff' });
});

t.test('foreign metadata is not Nova; a passthrough TPM is skipped for the emulator one', async (t) => {
  const d = parseDomainXml(fx('other-metadata.xml'));
  t.equal(d.nova, null);
  t.same(d.tpm, { model: 'tpm-crb', version: '2.0', encryptionSecret: null });
  t.equal(parseDomainXml(fx('no-tpm.xml')).tpm, null);
  t.equal(parseDomainXml(fx('no-metadata.xml')).nova, null);
});

t.test('Nova metadata in the default namespace; its <name> is not taken for the domain name', async (t) => {
  const d = parseDomainXml(
    `<domain type='qemu'><name>instance-00000001</name><uuid>11111111-2222-4333-8444-555555555555</uuid><metadata><instance xmlns="http://openstack.org/xmlns/libvirt/nova/1.1"><name>vm</name><flavor name="f"><extraSpecs><extraSpec name="hw:tpm_secret_security">deployment</extraSpec></extraSpecs></flavor></instance></metadata><devices><tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm></devices></domain>`,
  );
  t.equal(d.name, 'instance-00000001');
  t.equal(d.nova?.instanceName, 'vm');
  t.same(d.nova?.extraSpecs, { 'hw:tpm_secret_security': 'deployment' });
  t.same(d.tpm, { model: 'tpm-tis', version: '2.0', encryptionSecret: null });
});

t.test('garbage XML gives a typed parse error naming the problem', async (t) => {
  t.throws(() => parseDomainXml(fx('garbage.xml')), { code: 'VTPM_ERR_PARSE', message: /not well-formed/ });
  t.throws(() => parseDomainXml(''), { code: 'VTPM_ERR_PARSE', message: /empty/ });
  t.throws(() => parseDomainXml('<secret/>'), { code: 'VTPM_ERR_PARSE', message: /<domain>/ });
  t.throws(() => parseDomainXml('<domain><name>x</name><uuid>nope</uuid></domain>'), { code: 'VTPM_ERR_PARSE', message: /uuid/ });
});

t.test('virsh text parsers', async (t) => {
  t.same(parseDomState('shut off (failed)\n'), { state: 'shutoff', reason: 'failed' });
  t.same(parseDomState('running (booted)\n'), { state: 'running', reason: 'booted' });
  t.same(parseDomState('paused\n'), { state: 'paused', reason: null });
  t.equal(parseDomState('virsh > echo x\n'), null);
  const stats = parseDomStats("Domain: 'a'\n  state.state=5\n  state.reason=6\n\nDomain: 'b c'\n  state.state=1\n  state.reason=1\nvirsh > echo m\nDomain: 'd'\n  state.state=3\n  state.reason=99\n");
  t.same(stats.get('a'), { state: 'shutoff', reason: 'failed' });
  t.same(stats.get('b c'), { state: 'running', reason: 'booted' });
  t.same(stats.get('d'), { state: 'paused', reason: '99' });
  t.same(parseUuidList('3F1C2D4E-5A6B-4C7D-8E9F-0A1B2C3D4E5F\n\nvirsh > echo m\n'), ['3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f']);
  t.same(parseSecretList(' 6dd3e4a5-1d76-44ce-961f-f119f5aad935   vtpm 1111\n 6dd3e4a5-1d76-44ce-961f-f119f5aad936   volume /a b\n'), [
    { uuid: '6dd3e4a5-1d76-44ce-961f-f119f5aad935', usageType: 'vtpm', usageName: '1111' },
    { uuid: '6dd3e4a5-1d76-44ce-961f-f119f5aad936', usageType: 'volume', usageName: '/a b' },
  ]);
  t.same(parseSecretXml("<secret ephemeral='yes' private='yes'><uuid>x</uuid></secret>"), { ephemeral: true, private: true });
  t.same(parseSecretXml("<secret ephemeral='no' private='yes'><uuid>x</uuid></secret>"), { ephemeral: false, private: true });
  t.equal(parseSecretXml('<secret'), null);
  t.equal(stripPrompts('a\nvirsh > echo m\nb'), 'a\nb');
});

t.test('secret mode: none without encryption; else extra spec, then persistent secret, then user; unknown without the secret list', async (t) => {
  const nova = parseDomainXml(fx('nova-1.0-user.xml')).nova;
  const g = { uuid: '0b0c0d0e-1111-4222-8333-444455556666', encryptionSecret: '12345678-aaaa-4bbb-8ccc-ddddeeeeffff', nova };
  t.same(inferSecretMode(g, []), { mode: 'user', source: 'inferred' });
  t.same(inferSecretMode(g, null), { mode: 'unknown', source: 'inferred' });
  const persistent = { uuid: '12345678-aaaa-4bbb-8ccc-ddddeeeeffff', usageType: 'vtpm', usageName: g.uuid, ephemeral: false, private: true };
  t.same(inferSecretMode(g, [persistent]), { mode: 'host', source: 'inferred' });
  t.same(inferSecretMode(g, [{ ...persistent, ephemeral: true }]), { mode: 'user', source: 'inferred' });
  t.same(inferSecretMode({ uuid: 'x', encryptionSecret: null, nova: null }, []), { mode: 'none', source: 'domain' });
  // An unencrypted Nova guest (TPM 1.2 tis, Nova metadata 1.0) has no key to lose: never `user`.
  t.same(inferSecretMode({ ...g, encryptionSecret: null }, []), { mode: 'none', source: 'domain' });
  t.same(inferSecretMode({ ...g, encryptionSecret: null }, null), { mode: 'none', source: 'domain' });
  const host = parseDomainXml(fx('nova-1.1-host.xml'));
  t.same(inferSecretMode({ uuid: host.uuid, encryptionSecret: '12345678-aaaa-4bbb-8ccc-ddddeeeeffff', nova: host.nova }, null), { mode: 'host', source: 'extra-spec' });
  t.same(inferSecretMode({ uuid: host.uuid, encryptionSecret: null, nova: host.nova }, null), { mode: 'none', source: 'domain' }, 'no encryption: none, whatever the flavor says');
});

/** Domains with the name their XML carries and their `domstats --state` codes. */
function raw(domains: Array<{ uuid: string; xml: string; name?: string; state?: [number, number] }>, secretList = '', secretXml: Record<string, string> = {}): InventoryRaw {
  const domstats = domains
    .filter((d) => d.name && d.state)
    .map((d) => `Domain: '${d.name}'\n  state.state=${d.state![0]}\n  state.reason=${d.state![1]}\n\n`)
    .join('');
  return { list: '', secretList, secretListFailed: false, version: 'Using library: libvirt 8.0.0\n', domstats, domains: domains.map(({ uuid, xml }) => ({ uuid, xml })), secretXml };
}

t.test('inventory: a garbage or vanished domain is an error entry and the others are still listed', async (t) => {
  const inv = buildInventory(
    raw([
      { uuid: '0b0c0d0e-1111-4222-8333-444455556666', xml: fx('nova-1.0-user.xml') + 'virsh > echo m\n', name: 'instance-00000007', state: [1, 1] },
      { uuid: '00000000-0000-4000-8000-000000000001', xml: fx('garbage.xml') },
      { uuid: '00000000-0000-4000-8000-000000000002', xml: '' },
      { uuid: '12121212-3434-4565-8787-909090909090', xml: fx('no-tpm.xml'), name: 'no-tpm', state: [1, 1] },
      { uuid: '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f', xml: fx('nova-1.1-host.xml'), name: 'instance-0000002a', state: [5, 2] },
      { uuid: '99999999-8888-4777-8666-555544443333', xml: fx('no-metadata.xml'), name: 'plain-vtpm', state: [1, 1] },
    ]),
    false,
  );
  t.equal(inv.domainsSeen, 6);
  t.same(inv.guests.map((g) => g.name), ['instance-00000007', 'instance-0000002a', 'plain-vtpm']);
  t.same(inv.errors.map((e) => [e.domain, e.code]), [
    ['00000000-0000-4000-8000-000000000001', 'VTPM_ERR_PARSE'],
    ['00000000-0000-4000-8000-000000000002', 'VTPM_ERR_GUEST_DOMAIN_UNREADABLE'],
  ]);
  const legacy = inv.guests[0]!;
  t.equal(legacy.instanceUuid, legacy.uuid);
  t.equal(legacy.secretMode, 'user');
  t.equal(legacy.secretPresent, false);
  t.equal(legacy.state, 'running');
  t.equal(legacy.stateReason, 'booted');
  t.equal(inv.guests[1]!.state, 'shutoff');
  t.equal(inv.guests[1]!.stateReason, 'destroyed');
  t.equal(inv.guests[2]!.instanceUuid, null);
  t.equal(inv.libvirtVersion, '8.0.0');
  // running guests only; the stopped host-mode guest is not at risk even on old libvirt
  t.same(inv.atRisk.map((r) => [r.name, r.reasons]), [
    ['instance-00000007', ['user_secret_mode', 'resume_guests_off', 'libvirt_state_erasure']],
    ['plain-vtpm', ['resume_guests_off', 'libvirt_state_erasure']],
  ]);
});

t.test('at-risk: host mode on new libvirt with resume on is safe; unknown nova.conf is not judged', async (t) => {
  const inv = buildInventory(
    raw(
      [{ uuid: '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f', xml: fx('nova-1.1-host.xml'), name: 'instance-0000002a', state: [1, 1] }],
      ' aa11bb22-cc33-4d44-8e55-ff6677889900   vtpm 3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f\n',
      { 'aa11bb22-cc33-4d44-8e55-ff6677889900': "<secret ephemeral='no' private='yes'/>" },
    ),
    true,
  );
  const g = inv.guests[0]!;
  t.equal(g.secretPresent, true);
  t.equal(g.secretMode, 'host');
  t.same(riskReasons(g, { libvirtVersion: '9.0.0', resumeGuestsStateOnHostBoot: true }), []);
  t.same(riskReasons({ ...g, secretMode: 'user' }, { libvirtVersion: '9.0.0', resumeGuestsStateOnHostBoot: null }), ['user_secret_mode']);
  t.same(atRiskGuests([g], { libvirtVersion: '8.0.0', resumeGuestsStateOnHostBoot: null })[0]?.reasons, ['libvirt_state_erasure']);
});

t.test('virsh output the inventory cannot use is a VTPM_ERR_PARSE naming the command, not an empty list', async (t) => {
  t.throws(() => parseUuidList('3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f\n<domainCapabilities><devices\n'), { code: 'VTPM_ERR_PARSE', message: /virsh list --all --uuid printed a line it never prints: "<domainCapabilities><devices"/ });
  t.throws(() => parseSecretList('garbage line\n'), { code: 'VTPM_ERR_PARSE', message: /virsh secret-list/ });
  t.throws(() => parseDomStats("Domain: 'a'\n  state.state=1\n\u0000\u0001binary\n"), { code: 'VTPM_ERR_PARSE', message: /virsh domstats --state/ });
  t.same([...parseDomStats("Domain: 'a'\n  state.state=1\n  state.reason=1\n  state.future_stat=7\n").keys()], ['a'], 'other key=value statistics are tolerated');
  t.same(parseUuidList(''), [], 'no domains is a valid answer');
});

t.test('inventory: garbage in every domain XML, or no libvirt version, is no inventory', async (t) => {
  const uuid = '00000000-0000-4000-8000-000000000001';
  t.throws(() => buildInventory(raw([{ uuid, xml: fx('garbage.xml') }, { uuid: '00000000-0000-4000-8000-000000000002', xml: '' }]), null), {
    code: 'VTPM_ERR_PARSE',
    message: /virsh dumpxml printed no parsable domain XML \(1 of 2 domains\)/,
  });
  t.throws(() => buildInventory({ ...raw([]), version: 'garbage\n' }, null), { code: 'VTPM_ERR_PARSE', message: /virsh version printed no libvirt version: "garbage"/ });
  // Only vanished domains: nothing was unparsable, so the inventory stands (with its error entries).
  t.equal(buildInventory(raw([{ uuid, xml: '' }]), null).errors[0]?.code, 'VTPM_ERR_GUEST_DOMAIN_UNREADABLE');
});

t.test('inventory output caps: the XML batch is sized from the domains and secrets it asks for', async (t) => {
  const { batchCapBytes } = await import('../../src/libvirt/virsh.js');
  const { LISTS_BATCH_CAP, xmlBatchCap } = await import('../../src/guests/inventory.js');
  const cap = xmlBatchCap(128 * 1024);
  t.equal(batchCapBytes(['dumpxml a', 'dumpxml b', 'secret-dumpxml s'], cap), 64 * 1024 + 2 * 128 * 1024 + 16 * 1024);
  t.equal(batchCapBytes([], cap), 64 * 1024);
  t.equal(batchCapBytes(['list --all --uuid', 'secret-list', 'version', 'domstats --state'], LISTS_BATCH_CAP), 2 * 1024 * 1024);
});

t.test('an unencrypted Nova vTPM guest is secret mode none and never at risk for a missing key', async (t) => {
  const xml = fx('nova-1.0-user.xml').replace(/<encryption secret='[^']*'\/>/, '');
  t.notMatch(xml, /encryption/, 'the fixture lost its encryption');
  const inv = buildInventory(raw([{ uuid: '0b0c0d0e-1111-4222-8333-444455556666', xml, name: 'instance-00000007', state: [1, 1] }]), true);
  const g = inv.guests[0]!;
  t.same([g.secretMode, g.secretModeSource, g.secretPresent], ['none', 'domain', null]);
  t.same(riskReasons(g, { libvirtVersion: '9.0.0', resumeGuestsStateOnHostBoot: true }), [], 'not user_secret_mode');
  t.same(atRiskGuests([g], { libvirtVersion: '9.0.0', resumeGuestsStateOnHostBoot: true }), []);
});
