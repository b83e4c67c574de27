import t from 'tap';
import { compareVersions, LIBVIRT_KEEP_TPM, LIBVIRT_MIN, upstreamVersion } from '../../src/host/versions.js';

t.test('compareVersions: numeric per dotted part, -1/0/1', async (t) => {
  t.equal(compareVersions('8.9.0', '8.10.0'), -1);
  t.equal(compareVersions('9.0', '9.0.0'), 0);
  t.equal(compareVersions('10.0.0', '9.9.9'), 1);
  t.equal(compareVersions('9.0.0', '8.9.0'), 1);
  t.equal(compareVersions('8.1', '8.1.0'), 0);
  t.equal(compareVersions('0.7.1', '0.10.0'), -1);
  t.ok(compareVersions('8.0.0', '8.9.0') < 0);
  t.ok(compareVersions('9.0.0', '8.9.0') > 0);
  t.ok(compareVersions('8.10.0', '8.9.0') > 0);
});

t.test('compareVersions: package versions compare by their upstream part', async (t) => {
  // The three former copies disagreed here: one read `0-3` as 0, one as 3.
  t.equal(compareVersions('9.0.0-3+deb12u1', '9.0.0'), 0);
  t.equal(compareVersions('1:8.0.0-1', LIBVIRT_KEEP_TPM), -1, 'the epoch is not a version part');
  t.equal(compareVersions('0.7.1~rc1', '0.7.1'), 0);
  t.equal(compareVersions(LIBVIRT_MIN, LIBVIRT_KEEP_TPM), -1);
});

t.test('upstreamVersion', async (t) => {
  t.equal(upstreamVersion('0.9.2-3.1+deb12u1'), '0.9.2');
  t.equal(upstreamVersion('1:7.2+dfsg-7'), '7.2');
  t.equal(upstreamVersion('garbage'), null);
});
