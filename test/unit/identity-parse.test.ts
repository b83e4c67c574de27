import t from 'tap';
import { parseComputeId, parseHostname } from '../../src/identity/parse.js';

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
