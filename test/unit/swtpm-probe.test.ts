import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { readAccounts } from '../../src/host/accounts.js';
import { verdictFromResults } from '../../src/current-verdict.js';
import { defaultConfig } from '../../src/config/load.js';
import { emulationProbe, emulationReport } from '../../src/probes/emulation.js';
import type { ProbeResult } from '../../src/results.js';
import { emulationOutcomes, emulationOutcomesFromResult } from '../../src/libvirt/emulation-outcomes.js';
import { plannedChecks, runAsPrincipal, type EmulationCheckResult, type EmulationData } from '../../src/swtpm/index.js';
import { computeVerdict } from '../../src/verdict.js';

function check(partial: Partial<EmulationCheckResult> & Pick<EmulationCheckResult, 'version' | 'level' | 'ok'>): EmulationCheckResult {
  return {
    failedStep: null,
    message: null,
    errorCode: null,
    rc: null,
    rcName: null,
    durationSeconds: 0.05,
    manufacturer: null,
    firmwareVersion: null,
    specRevision: null,
    steps: [],
    startedAt: 1_700_000_000_000,
    lastSuccessAt: null,
    ...partial,
  };
}

const data: EmulationData = {
  swtpmPath: 'swtpm',
  runAs: { mode: 'auto', user: 'tss', group: 'tss', uid: 103, gid: 110 },
  tempBase: '/tmp',
  checks: [
    check({ version: '1.2', level: 'basic', ok: true, manufacturer: 'IBM', firmwareVersion: '18.158', lastSuccessAt: 1_700_000_000_300 }),
    check({ version: '2.0', level: 'basic', ok: false, failedStep: 'startup', message: 'TPM 2.0 Startup returned TPM_RC_FAILURE (0x00000101)', errorCode: 'VTPM_ERR_TPM_RESPONSE', rc: 0x101, rcName: 'TPM_RC_FAILURE', lastSuccessAt: 1_699_999_000_000 }),
    check({ version: '2.0', level: 'state', ok: true, lastSuccessAt: 1_700_000_001_000 }),
  ],
};
const result = (d: EmulationData): ProbeResult<EmulationData> => ({ probe: 'emulation', ok: true, data: d, startedAt: 0, durationSeconds: 1, lastSuccessAt: null });

t.test('planned checks follow versions and levels', async (t) => {
  const config = defaultConfig();
  t.same(plannedChecks(config), [
    { version: '1.2', level: 'basic' },
    { version: '2.0', level: 'basic' },
    { version: '2.0', level: 'state' },
  ]);
  config.emulation.versions = ['2.0'];
  config.emulation.levels = ['state'];
  t.same(plannedChecks(config), [{ version: '2.0', level: 'state' }]);
  config.emulation.versions = ['1.2'];
  t.same(plannedChecks(config), [], 'state exists for TPM 2.0 only');
});

t.test('outcomes feed the verdict with the failing step and rc name', async (t) => {
  const outcomes = emulationOutcomes(data);
  t.same(outcomes[0], { version: '1.2', level: 'basic', ok: true });
  t.same(outcomes[1], { version: '2.0', level: 'basic', ok: false, failedStep: 'startup', message: 'TPM 2.0 Startup returned TPM_RC_FAILURE (0x00000101)' });
  t.same(emulationOutcomes(undefined), []);
  t.equal(emulationOutcomesFromResult(undefined), null, 'not run yet: absent from the verdict');
  const failed = emulationOutcomesFromResult({ probe: 'emulation', ok: false, error: { code: 'VTPM_ERR_PROBE_TIMEOUT', message: 'probe emulation did not finish' }, startedAt: 0, durationSeconds: 60, lastSuccessAt: null });
  t.equal(failed?.length, 2);
  t.ok(failed?.every((o) => !o.ok && o.failedStep === 'round'));
  const verdict = computeVerdict({ domcaps: null, swtpm: null, host: null, emulation: outcomes });
  const v20 = verdict.combinations.filter((c) => c.version === '2.0');
  t.ok(v20.every((c) => c.reasons.some((r) => r.code === 'EMULATION_FAILED' && r.message.includes("at step 'startup'") && r.message.includes('TPM_RC_FAILURE'))));
  const v12 = verdict.combinations.find((c) => c.version === '1.2');
  t.notOk(v12?.reasons.some((r) => r.code === 'EMULATION_FAILED'));
});

t.test('the probe registers the verdict reader', async (t) => {
  const store = new Map<string, ProbeResult>([['emulation', result(data) as ProbeResult]]);
  const stub = (name: string, d: unknown): ProbeResult => ({ probe: name, ok: true, data: d, startedAt: 0, durationSeconds: 0, lastSuccessAt: null });
  store.set('libvirt', stub('libvirt', { machines: [] }));
  store.set('swtpm', stub('swtpm', null));
  store.set('host', stub('host', null));
  const verdict = verdictFromResults({ get: <T>(n: string) => store.get(n) as ProbeResult<T> | undefined });
  t.ok(verdict?.combinations.some((c) => c.reasons.some((r) => r.code === 'EMULATION_FAILED')), 'emulation failure reaches the verdict');
});

t.test('report: one row per version x level', async (t) => {
  const section = emulationReport(result(data));
  t.equal(section.ok, false);
  t.match(section.summary, /1 of 3 .*failed \(as tss:tss\): TPM 2.0 basic at 'startup'/);
  t.same(section.table?.[0], ['version', 'level', 'result', 'failed step', 'TPM rc', 'duration', 'manufacturer', 'firmware', 'message']);
  t.same(section.table?.[1]?.slice(0, 8), ['1.2', 'basic', 'ok', '-', '-', '50 ms', 'IBM', '18.158']);
  t.same(section.table?.[2]?.slice(0, 5), ['2.0', 'basic', 'FAILED', 'startup', 'TPM_RC_FAILURE (0x00000101)']);
  t.equal(emulationReport(undefined).ok, null);
  const down = emulationReport({ probe: 'emulation', ok: false, error: { code: 'VTPM_ERR_PROBE_TIMEOUT', message: 'boom' }, startedAt: 0, durationSeconds: 1, lastSuccessAt: null });
  t.equal(down.ok, false);
  t.match(down.summary, /boom/);
  const allOk = emulationReport(result({ ...data, checks: data.checks.filter((c) => c.ok) }));
  t.equal(allOk.ok, true);
});

t.test('metrics read the latest result only', async (t) => {
  const registry = new Registry();
  let current: ProbeResult<EmulationData> | undefined;
  emulationProbe.registerMetrics!(registry, { get: <T>() => current as ProbeResult<T> | undefined });
  t.equal((await registry.metrics()).includes('vtpm_emulation_check_success{'), false, 'no samples before a run');
  current = result(data);
  const text = await registry.metrics();
  t.match(text, 'vtpm_emulation_check_success{version="1.2",level="basic"} 1');
  t.match(text, 'vtpm_emulation_check_success{version="2.0",level="basic"} 0');
  t.match(text, 'vtpm_emulation_check_duration_seconds{version="2.0",level="state"} 0.05');
  t.match(text, 'vtpm_emulation_check_last_success_timestamp_seconds{version="2.0",level="basic"} 1699999000');
  t.match(text, 'vtpm_emulation_tpm_info{version="1.2",manufacturer="IBM",firmware_version="18.158"} 1');
  t.notMatch(text, /vtpm_emulation_tpm_info\{version="2.0"/, 'no info without a capability read');
  t.match(text, 'vtpm_emulation_check_last_run_timestamp_seconds{version="1.2",level="basic"} 1700000000');
  t.match(text, 'vtpm_emulation_check_failure_info{version="2.0",level="basic",step="startup",rc_name="TPM_RC_FAILURE"} 1');
  t.notMatch(text, /vtpm_emulation_check_failure_info\{version="1.2"/, 'no failure series for a passing check');
});

t.test('probe settings come from the emulation config', async (t) => {
  const config = defaultConfig();
  t.equal(emulationProbe.schedule?.(config), '*/10 * * * *');
  t.equal(emulationProbe.timeoutMs?.(config), 60_000);
  t.equal(emulationProbe.enabled?.(config), true);
  config.emulation.enabled = false;
  t.equal(emulationProbe.enabled?.(config), false);
  t.equal(config.emulation.runAs, 'auto');
  t.equal(config.emulation.tempDir, null);
});

t.test('principal: swtpm user when root, self otherwise, by configuration', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'swtpm-principal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\ntss:x:103:110::/var/lib/tpm:/bin/false\n');
  await writeFile(path.join(dir, 'group'), 'root:x:0:\ntss:x:110:\n');
  const accounts = await readAccounts(path.join(dir, 'passwd'), path.join(dir, 'group'));
  const names = { user: 'tss', group: 'tss' };
  t.same(await runAsPrincipal('auto', names, accounts, 0), { user: 'tss', group: 'tss', uid: 103, gid: 110 });
  t.equal(await runAsPrincipal('auto', names, accounts, 1000), null);
  t.equal(await runAsPrincipal('self', names, accounts, 0), null);
  t.same(await runAsPrincipal('swtpm-user', { user: '4242', group: '4343' }, accounts, 0), { user: '4242', group: '4343', uid: 4242, gid: 4343 });
  await t.rejects(runAsPrincipal('swtpm-user', names, accounts, 1000), { code: 'VTPM_ERR_SWTPM_START', message: /not root/ });
  await t.rejects(runAsPrincipal('auto', { user: 'nobody-here', group: 'tss' }, accounts, 0), { message: /swtpm user 'nobody-here' does not exist/ });
  await t.rejects(runAsPrincipal('auto', { user: 'tss', group: 'nogroup' }, accounts, 0), { message: /swtpm group 'nogroup' does not exist/ });
});
