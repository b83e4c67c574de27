import t from 'tap';
import { auditHosts, auditRequests, capacity, flavorRequest, hostView, imageRequest, requestedCombination, type TpmRequest } from '../../src/fleet/audit.js';
import type { FleetProvider } from '../../src/fleet/placement.js';
import type { AgentView } from '../../src/fleet/prometheus.js';

const KNOWN = new Set(['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_TIS', 'COMPUTE_SECURITY_TPM_CRB']);
const provider = (name: string, traits: string[], uuid = `${name}-uuid`): FleetProvider => ({ uuid, name, traits, fenced: traits.includes('CUSTOM_VTPM_DEGRADED') });
const agent = (over: Partial<AgentView>): AgentView => ({ target: 'vtpm/x:9643', providerName: null, computeNodeUuid: null, novaHost: null, up: true, usable: [], guestsAtRisk: {}, ...over });
const allUsable = (usable: boolean) =>
  (
    [
      ['1.2', 'tpm-tis'],
      ['2.0', 'tpm-tis'],
      ['2.0', 'tpm-crb'],
    ] as const
  ).map(([version, model]) => ({ version, model, usable }));
const req = (over: Partial<TpmRequest>): TpmRequest => ({ source: 'flavor', id: 'f1', name: 'f', version: null, model: null, secretSecurity: null, fencingTraitSpec: null, ...over });

t.test('requested configuration: defaults, invalid values and combinations', async (t) => {
  t.same(requestedCombination(req({ version: '2.0' })), { ok: true, combo: { version: '2.0', model: 'tpm-tis' } }, 'model defaults to tpm-tis');
  t.match(requestedCombination(req({ version: '1.2', model: 'tpm-crb' })), { ok: false, kind: 'invalid-combination', detail: /CRB exists only for TPM 2.0/ });
  t.match(requestedCombination(req({ model: 'tpm-crb' })), { ok: false, kind: 'invalid-combination', detail: /hw:tpm_model=tpm-crb without hw:tpm_version/ });
  t.match(requestedCombination(req({ source: 'image', version: '3.0' })), { ok: false, kind: 'invalid-value', detail: /hw_tpm_version=3.0/ });
  t.match(requestedCombination(req({ version: '2.0', model: 'tpm-spapr' })), { ok: false, kind: 'invalid-value' });
  t.same(flavorRequest({ id: '1', name: 'n', isPublic: true, extraSpecs: { 'hw:tpm_version': '2.0', 'trait:CUSTOM_X': 'forbidden' } }, 'CUSTOM_X').fencingTraitSpec, 'forbidden');
  t.equal(imageRequest({ id: 'i', name: 'n', visibility: 'public', properties: { hw_tpm_model: 'tpm-crb' } }).model, 'tpm-crb');
});

t.test('host view: agent joined by compute node UUID, else by provider name; drift only against a verdict', async (t) => {
  const p = provider('cmp1', ['COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_CRB'], 'U1');
  const byName = agent({ providerName: 'cmp1', usable: allUsable(true), target: 'a' });
  const byUuid = agent({ computeNodeUuid: 'U1', providerName: 'renamed', usable: allUsable(false), target: 'b' });
  t.equal(hostView(p, [byName, byUuid], 'CUSTOM_VTPM_', KNOWN).agentTarget, 'b', 'the UUID wins over the name');
  const h = hostView(p, [byName], 'CUSTOM_VTPM_', KNOWN);
  t.same(h.advertised, ['2.0/tpm-crb'], 'model traits present: only the advertised model');
  t.same(h.verified, ['1.2/tpm-tis', '2.0/tpm-tis', '2.0/tpm-crb']);
  t.same(
    h.drift.map((d) => `${d.trait} ${d.state}`),
    ['COMPUTE_SECURITY_TPM_1_2 usable-not-advertised', 'COMPUTE_SECURITY_TPM_TIS usable-not-advertised'],
  );
  const unknownTis = hostView(p, [byName], 'CUSTOM_VTPM_', new Set(['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_CRB']));
  t.same(unknownTis.drift.map((d) => d.trait), ['COMPUTE_SECURITY_TPM_1_2'], 'a trait this Placement does not know is not drift');
  t.match(hostView(p, [], 'CUSTOM_VTPM_', KNOWN), { agent: 'missing', verified: null, drift: [] });
  t.match(hostView(p, [agent({ providerName: 'cmp1', up: false, usable: allUsable(true) })], 'CUSTOM_VTPM_', KNOWN), { agent: 'down', verified: null, guestsAtRisk: {} }, 'a down agent has no verdict');
  t.match(hostView(p, null, 'CUSTOM_VTPM_', KNOWN), { agent: 'not-checked' });
  const traitsOnly = hostView(provider('cmp2', ['COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_TIS']), null, 'CUSTOM_VTPM_', KNOWN);
  t.match(traitsOnly, { verified: ['2.0/tpm-tis'], verifiedSource: 'placement-verified-traits', advertised: ['2.0/tpm-tis', '2.0/tpm-crb'] }, 'no model traits: both models');
});

t.test('capacity and audit: ready = advertised, verified, not fenced; findings per flavor, image and host', async (t) => {
  const hosts = [
    hostView(provider('ok', ['COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_TIS', 'COMPUTE_SECURITY_TPM_CRB'], 'U1'), [agent({ computeNodeUuid: 'U1', usable: allUsable(true) })], 'CUSTOM_VTPM_', KNOWN),
    hostView(
      provider('fenced', ['COMPUTE_SECURITY_TPM_1_2', 'CUSTOM_VTPM_DEGRADED'], 'U2'),
      [agent({ computeNodeUuid: 'U2', usable: allUsable(false), guestsAtRisk: { user_secret_mode: 2 }, target: 't2' })],
      'CUSTOM_VTPM_',
      KNOWN,
    ),
  ];
  const cap = capacity(hosts);
  t.match(cap, [
    { version: '1.2', model: 'tpm-tis', advertised: 1, verified: 1, fenced: 1, ready: 0 },
    { version: '2.0', model: 'tpm-tis', advertised: 1, verified: 1, fenced: 0, ready: 1 },
    { version: '2.0', model: 'tpm-crb', advertised: 1, verified: 1, fenced: 0, ready: 1 },
  ]);
  const findings = auditRequests(
    [
      req({ id: 'a', name: 'good', version: '2.0', model: 'tpm-crb', fencingTraitSpec: 'forbidden', secretSecurity: 'host' }),
      req({ id: 'b', name: 'tpm12', version: '1.2', fencingTraitSpec: 'forbidden' }),
      req({ id: 'c', name: 'unfenced', version: '2.0', fencingTraitSpec: 'required' }),
      req({ id: 'd', name: 'user', version: '2.0', fencingTraitSpec: 'forbidden', secretSecurity: 'user' }),
      req({ id: 'e', name: 'odd', version: '2.0', fencingTraitSpec: 'forbidden', secretSecurity: 'tenant' }),
      req({ id: 'f', name: 'img', source: 'image', version: '2.0' }),
    ],
    cap,
    { fencingTrait: 'CUSTOM_VTPM_DEGRADED', fencingEnabled: true, verdictsAvailable: true },
  );
  t.same(
    findings.map((f) => `${f.kind} ${f.subject}`),
    ['no-verified-host flavor tpm12', 'fencing-not-forbidden flavor unfenced', 'secret-security-user flavor user', 'invalid-value flavor odd'],
  );
  t.match(findings[1]!.detail, /\(it is required\)/);
  const off = auditRequests([req({ id: 'c', name: 'unfenced', version: '2.0' })], cap, { fencingTrait: 'CUSTOM_VTPM_DEGRADED', fencingEnabled: false, verdictsAvailable: true });
  t.same(off, [], 'no fencing in use: no forbidden trait needed');
  const noVerdicts = auditRequests([req({ id: 'b', name: 'tpm12', version: '1.2' })], capacity([hostView(provider('x', ['COMPUTE_SECURITY_TPM_2_0']), null, 'CUSTOM_VTPM_', KNOWN)]), {
    fencingTrait: 'CUSTOM_VTPM_DEGRADED',
    fencingEnabled: false,
    verdictsAvailable: false,
  });
  t.match(noVerdicts, [{ kind: 'no-advertised-host', detail: /pass --prometheus/ }], 'without verdicts: judged by what is advertised');
  t.same(
    auditHosts(hosts).map((f) => `${f.kind} ${f.subject} ${f.detail}`),
    [
      'trait-drift host ok COMPUTE_SECURITY_TPM_1_2 usable-not-advertised',
      'host-fenced host fenced carries the fencing trait: an advertised vTPM configuration fails its checks',
      'trait-drift host fenced COMPUTE_SECURITY_TPM_1_2 advertised-not-usable',
      'guests-at-risk host fenced 2 user_secret_mode',
    ],
  );
});
