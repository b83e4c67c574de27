import { execFileSync } from 'node:child_process';
import { Registry } from 'prom-client';
import t from 'tap';
import { registerPlacementMetrics } from '../../src/placement/metrics.js';
import type { ReconcileResult } from '../../src/placement/reconciler.js';
import { placementSection, renderSection } from '../../src/placement/report.js';
import { assessTraits } from '../../src/placement/traits.js';
import { requireCommands } from '../harness/components.js';
import { hostVerdict } from '../harness/placement.js';

const traits = ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_VTPM_DEGRADED'];
const drift: ReconcileResult = {
  state: 'drift',
  ok: false,
  summary: 'provider cn-1: COMPUTE_SECURITY_TPM_2_0 advertised but not usable (EMULATION_FAILED)',
  at: Date.parse('2026-11-28T12:00:00Z'),
  durationSeconds: 0.05,
  mode: 'enforce',
  dryRun: false,
  provider: { uuid: '6e4b6a34-1b0c-4d2e-9f67-3a1c2b4d5e6f', name: 'cn-1', via: 'name' },
  providerNotes: [],
  microversion: '1.39',
  generation: 7,
  traits,
  assessment: assessTraits(hostVerdict({ failing: ['2.0'] }), new Set(traits), new Set(['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0'])),
  fence: true,
  plan: { add: ['CUSTOM_VTPM_DEGRADED'], remove: [] },
  wrote: true,
  conflicts: 1,
  createdTraits: [],
  requests: 4,
  tokenRequests: 0,
  error: null,
};

t.test('section and text for a drifting, fenced host', async (t) => {
  const s = placementSection(drift, { state: 'drift', lastSuccessAt: drift.at, consecutiveFailures: 0 });
  t.equal(s.ok, false);
  t.equal(s.table?.[0]?.[0], 'trait');
  const text = renderSection(s);
  t.match(text, /^\[FAIL\] placement: provider cn-1: COMPUTE_SECURITY_TPM_2_0 advertised but not usable/);
  t.match(text, /COMPUTE_SECURITY_TPM_2_0\s+yes\s+no\s+yes\s+advertised-not-usable\s+EMULATION_FAILED/);
  t.match(text, /COMPUTE_SECURITY_TPM_CRB\s+n\/a\s+no\s+yes\s+unknown-to-placement/);
  const idle = placementSection(null, { state: 'not-configured' });
  t.equal(idle.ok, null);
  t.match(renderSection(idle), /^\[N\/A \] placement: no OpenStack credentials configured/);
  const failed = placementSection({ ...drift, state: 'unreachable', ok: false, assessment: null, error: { code: 'VTPM_ERR_HTTP_UNREACHABLE', message: 'x' }, summary: 'Placement or Keystone is unreachable: x' }, {
    state: 'unreachable',
    nextAttemptAt: Date.parse('2026-11-28T12:05:00Z'),
  });
  t.equal(failed.summary, 'Placement or Keystone is unreachable: x (retry at 2026-11-28T12:05:00.000Z)');
  t.equal(failed.table, undefined);
});

t.test('metrics read memory only and pass promtool lint', async (t) => {
  const registry = new Registry();
  let latest: ReconcileResult | null = null;
  registerPlacementMetrics(registry, {
    state: () => latest?.state ?? 'not-configured',
    result: () => latest,
    lastRead: () => latest,
    lastSuccessAt: () => latest?.at ?? null,
    reconciles: () => ({ success: latest ? 3 : 0, failure: 1 }),
    counters: () => ({ writes: 2, conflicts: 1, createdTraits: 1, apiErrors: new Map([['placement 409', 1], ['identity bad-response', 1]]) }),
    sessionStats: () => null,
    managedTraits: () => ['CUSTOM_VTPM_DEGRADED'],
    mode: () => 'enforce',
  });
  const before = await registry.metrics();
  t.match(before, /vtpm_placement_reconcile_state\{state="not_configured"\} 1/);
  t.notMatch(before, /vtpm_placement_trait_drift\{/, 'no trait series before a pass');
  latest = drift;
  const text = await registry.metrics();
  t.match(text, /vtpm_placement_trait_drift\{trait="COMPUTE_SECURITY_TPM_2_0"\} 1/);
  t.match(text, /vtpm_placement_trait_drift\{trait="COMPUTE_SECURITY_TPM_1_2"\} 0/);
  t.match(text, /vtpm_placement_trait_state\{trait="COMPUTE_SECURITY_TPM_TIS",state="unknown_to_placement"\} 1/);
  t.match(text, /vtpm_placement_owned_trait_present\{trait="CUSTOM_VTPM_DEGRADED"\} 1/);
  t.match(text, /vtpm_placement_api_errors_total\{service="identity",status="bad_response"\} 1/);
  t.match(text, /vtpm_placement_reconcile_last_success_timestamp_seconds 1795867200/);
  t.match(text, /vtpm_placement_reconciles_total\{result="success"\} 3/);
  requireCommands('promtool');
  const lint = execFileSync('sh', ['-c', 'promtool check metrics 2>&1; echo rc=$?'], { input: text, encoding: 'utf8' });
  t.equal(lint.trim(), 'rc=0', lint);
});
