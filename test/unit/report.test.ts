import t from 'tap';
import { renderReport, sectionsNeedingAttention, type HostReport } from '../../src/report.js';
import { computeVerdict } from '../../src/verdict.js';
import { capturedDomcaps, hostFacts, swtpmFacts } from '../fixtures/debian12-facts.js';

function report(sections: HostReport['sections'], usable = true): HostReport {
  return {
    schemaVersion: 1,
    agentVersion: '0.0.0-test',
    hostname: 'compute-01',
    generatedAt: new Date(0).toISOString(),
    versions: { libvirt: '9.0.0', qemu: '7.2.22', swtpm: '0.7.1' },
    verdict: computeVerdict({ domcaps: capturedDomcaps(), swtpm: usable ? swtpmFacts() : null, host: hostFacts() }),
    probes: [],
    sections,
  };
}

t.test('a section that is not applicable or not run yet needs no attention; a false one does', async (t) => {
  const r = report([
    { name: 'placement', ok: null, summary: 'no OpenStack credentials configured', data: null },
    { name: 'emulation', ok: true, summary: 'all passed', data: null },
    { name: 'guest-inventory', ok: false, summary: '1 at risk', data: null },
    { name: 'Health: swtpm principal', ok: false, summary: 'C3 principal: fail (2)', data: null },
  ]);
  t.same(sectionsNeedingAttention(r), ['guest-inventory', 'Health: swtpm principal']);
  t.match(renderReport(r), /\nResult: vTPM usable on this host, but 2 section\(s\) need attention: guest-inventory, Health: swtpm principal$/);
});

t.test('all well: the plain result line', async (t) => {
  const r = report([{ name: 'emulation', ok: true, summary: 'all passed', data: null }]);
  t.same(sectionsNeedingAttention(r), []);
  t.match(renderReport(r), /\nResult: vTPM usable on this host$/);
});

t.test('nothing usable says so, whatever the sections say', async (t) => {
  const r = report([{ name: 'guest-inventory', ok: false, summary: '1 at risk', data: null }], false);
  t.equal(r.verdict?.anyUsable, false);
  t.match(renderReport(r), /\nResult: no vTPM configuration is usable on this host$/);
});
