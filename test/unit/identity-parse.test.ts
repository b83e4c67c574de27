import t from 'tap';
import { parseComputeId, parseHostname } from '../../src/identity/parse.js';
import { placementFromMountinfoText } from '../../src/host/libvirtd-location.js';

t.test('compute_id: one UUID, newline tolerated, case normalised; anything else is a typed parse error', async (t) => {
  t.equal(parseComputeId('2b8e1a6e-7d3c-4f3a-9a39-5c1f0e6a7b80\n', '/var/lib/nova/compute_id'), '2b8e1a6e-7d3c-4f3a-9a39-5c1f0e6a7b80');
  t.equal(parseComputeId('2B8E1A6E-7D3C-4F3A-9A39-5C1F0E6A7B80', 'f'), '2b8e1a6e-7d3c-4f3a-9a39-5c1f0e6a7b80');
  for (const bad of ['', 'not-a-uuid', '2b8e1a6e-7d3c-4f3a-9a39-5c1f0e6a7b80 extra', '2b8e1a6e7d3c4f3a9a395c1f0e6a7b80']) {
    t.throws(() => parseComputeId(bad, '/var/lib/nova/compute_id'), { name: 'AgentError', code: 'VTPM_ERR_PARSE', message: /compute_id/ }, JSON.stringify(bad));
  }
});

t.test('host names: one FQDN or short name per line; trailing dot dropped; garbage rejected', async (t) => {
  t.equal(parseHostname('compute-01.example.org\n', 'hostname --fqdn'), 'compute-01.example.org');
  t.equal(parseHostname('vm\n', 'virsh hostname'), 'vm');
  t.equal(parseHostname('compute-01.example.org.\n', 'x'), 'compute-01.example.org');
  for (const bad of ['', 'hostname: Name or service not known', '-bad.example', 'a..b']) {
    t.throws(() => parseHostname(bad, 'hostname --fqdn'), { name: 'AgentError', code: 'VTPM_ERR_PARSE', message: /hostname --fqdn/ }, JSON.stringify(bad));
  }
});

t.test('placement from mountinfo: overlay or a bind of a subdirectory at / is a container', async (t) => {
  const host = '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n23 22 0:21 / /proc rw,relatime - proc proc rw\n';
  const container =
    '1200 1100 0:120 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/l1,upperdir=/u,workdir=/w\n1201 1200 0:121 / /proc rw - proc proc rw\n';
  const bind = '300 200 254:0 /var/lib/machines/x / rw,relatime - ext4 /dev/vda rw\n';
  t.equal(placementFromMountinfoText(host), 'host');
  t.equal(placementFromMountinfoText(container), 'container');
  t.equal(placementFromMountinfoText(bind), 'container');
  t.equal(placementFromMountinfoText(''), 'unknown');
  t.equal(placementFromMountinfoText(`${host}400 22 0:99 / / rw - overlay overlay rw\n`), 'container', 'the last mount on / is the visible one');
});
