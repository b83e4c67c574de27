import t from 'tap';
import { placementConfigSchema } from '../../src/placement/config.js';
import {
  advertisedCombinations,
  assessTraits,
  desiredOwnedTraits,
  managedTraitNames,
  planTraits,
  shouldFence,
  verifiedTraitName,
} from '../../src/placement/traits.js';
import { hostVerdict } from '../harness/placement.js';

const DEBIAN_KNOWN = new Set(['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
const ALL_KNOWN = new Set([...DEBIAN_KNOWN, 'COMPUTE_SECURITY_TPM_TIS', 'COMPUTE_SECURITY_TPM_CRB']);
const states = (a: ReturnType<typeof assessTraits>) => Object.fromEntries(a.map((x) => [x.trait, x.state]));
const owned = { ownedPrefix: 'CUSTOM_VTPM_', fencingTrait: 'CUSTOM_VTPM_DEGRADED', verifiedTraits: false };

t.test('healthy host, Nova advertising everything it should: consistent', async (t) => {
  const v = hostVerdict();
  const a = assessTraits(v, new Set(v.expectedNovaTraits), ALL_KNOWN);
  t.same(states(a), {
    COMPUTE_SECURITY_TPM_1_2: 'consistent',
    COMPUTE_SECURITY_TPM_2_0: 'consistent',
    COMPUTE_SECURITY_TPM_TIS: 'consistent',
    COMPUTE_SECURITY_TPM_CRB: 'consistent',
  });
  t.equal(shouldFence(v, new Set(v.expectedNovaTraits)), false);
});

t.test('Debian Placement (no TIS/CRB traits): unknown-to-placement, not drift', async (t) => {
  const v = hostVerdict();
  const a = assessTraits(v, new Set(['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']), DEBIAN_KNOWN);
  t.same(states(a), {
    COMPUTE_SECURITY_TPM_1_2: 'consistent',
    COMPUTE_SECURITY_TPM_2_0: 'consistent',
    COMPUTE_SECURITY_TPM_TIS: 'unknown-to-placement',
    COMPUTE_SECURITY_TPM_CRB: 'unknown-to-placement',
  });
});

t.test('TPM 2.0 emulation fails while Nova advertises it: advertised-not-usable with the reason, fence', async (t) => {
  const v = hostVerdict({ failing: ['2.0'] });
  const current = new Set(['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'HW_CPU_X86_AVX']);
  const a = assessTraits(v, current, DEBIAN_KNOWN);
  const tpm20 = a.find((x) => x.trait === 'COMPUTE_SECURITY_TPM_2_0')!;
  t.equal(tpm20.state, 'advertised-not-usable');
  t.same(tpm20.reasons, ['EMULATION_FAILED']);
  t.equal(tpm20.expectedByNova, true, 'Nova (from domain capabilities) still thinks it works');
  t.equal(states(a).COMPUTE_SECURITY_TPM_1_2, 'consistent');
  t.equal(shouldFence(v, current), true);
  t.same(
    advertisedCombinations(v, current).map((c) => `${c.version}/${c.model}`),
    ['1.2/tpm-tis', '2.0/tpm-tis', '2.0/tpm-crb'],
    'without model traits every combination of an advertised version counts',
  );
});

t.test('usable but not advertised (nova-compute stale, or swtpm_enabled off)', async (t) => {
  const v = hostVerdict();
  const a = assessTraits(v, new Set(['COMPUTE_SECURITY_TPM_2_0']), DEBIAN_KNOWN);
  t.equal(states(a).COMPUTE_SECURITY_TPM_1_2, 'usable-not-advertised');
  t.equal(shouldFence(v, new Set(['COMPUTE_SECURITY_TPM_2_0'])), false);
});

t.test('model traits narrow the advertised combinations', async (t) => {
  const v = hostVerdict({ failing: ['1.2'] });
  const current = new Set(['COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_CRB']);
  t.same(advertisedCombinations(v, current).map((c) => `${c.version}/${c.model}`), ['2.0/tpm-crb']);
  t.equal(shouldFence(v, current), false, '1.2 is broken but not advertised: no fence');
  const a = assessTraits(v, current, ALL_KNOWN);
  t.equal(states(a).COMPUTE_SECURITY_TPM_TIS, 'usable-not-advertised', '2.0/TIS still works');
});

t.test('nothing works and nothing is advertised: consistent, no fence', async (t) => {
  const v = hostVerdict({ noSwtpm: true });
  const a = assessTraits(v, new Set(), DEBIAN_KNOWN);
  t.same(states(a).COMPUTE_SECURITY_TPM_2_0, 'consistent');
  t.ok(a.find((x) => x.trait === 'COMPUTE_SECURITY_TPM_2_0')!.reasons.includes('SWTPM_MISSING'));
  t.equal(shouldFence(v, new Set()), false);
});

t.test('desired owned traits: fencing and verified capabilities', async (t) => {
  const broken = hostVerdict({ failing: ['2.0'] });
  const current = new Set(['COMPUTE_SECURITY_TPM_2_0']);
  t.same([...desiredOwnedTraits(broken, current, owned)], ['CUSTOM_VTPM_DEGRADED']);
  t.same([...desiredOwnedTraits(broken, current, { ...owned, verifiedTraits: true })].sort(), ['CUSTOM_VTPM_DEGRADED', 'CUSTOM_VTPM_VERIFIED_TPM_1_2_TIS']);
  t.same([...desiredOwnedTraits(hostVerdict(), current, { ...owned, verifiedTraits: true })].sort(), [
    'CUSTOM_VTPM_VERIFIED_TPM_1_2_TIS',
    'CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB',
    'CUSTOM_VTPM_VERIFIED_TPM_2_0_TIS',
  ]);
  t.equal(verifiedTraitName('CUSTOM_X_', '2.0', 'tpm-crb'), 'CUSTOM_X_VERIFIED_TPM_2_0_CRB');
  t.same(managedTraitNames({ ...owned, verifiedTraits: true }, null).length, 4);
  t.same(managedTraitNames(owned, null), ['CUSTOM_VTPM_DEGRADED']);
});

t.test('plan: (current − owned) ∪ desired; traits of others pass through', async (t) => {
  const current = ['COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_NOVA_THING', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB', 'HW_CPU_X86_AVX'];
  const p = planTraits(current, new Set(['CUSTOM_VTPM_DEGRADED']), 'CUSTOM_VTPM_');
  t.same(p.next, ['COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_NOVA_THING', 'CUSTOM_VTPM_DEGRADED', 'HW_CPU_X86_AVX']);
  t.same(p.add, ['CUSTOM_VTPM_DEGRADED']);
  t.same(p.remove, ['CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB']);
  t.equal(p.changed, true);
  const same = planTraits(['A', 'CUSTOM_VTPM_DEGRADED'], new Set(['CUSTOM_VTPM_DEGRADED']), 'CUSTOM_VTPM_');
  t.equal(same.changed, false, 'no write when nothing changes');
  t.throws(() => planTraits([], new Set(['CUSTOM_OTHER']), 'CUSTOM_VTPM_'), /outside the owned prefix/);
});

t.test('config: defaults, fencing trait under the prefix, bad trait names', async (t) => {
  const c = placementConfigSchema.parse({});
  t.equal(c.mode, 'observe');
  t.equal(c.fencingTrait, 'CUSTOM_VTPM_DEGRADED');
  t.equal(c.verifiedTraits, false);
  t.throws(() => placementConfigSchema.parse({ fencingTrait: 'CUSTOM_OTHER' }), /fencingTrait must start with ownedPrefix/);
  t.throws(() => placementConfigSchema.parse({ fencingTrait: 'VTPM_DEGRADED' }), /custom trait/);
  t.throws(() => placementConfigSchema.parse({ ownedPrefix: 'VTPM_' }), /CUSTOM_/);
  t.throws(() => placementConfigSchema.parse({ schedule: 'every minute' }), /cron/);
  t.throws(() => placementConfigSchema.parse({ mode: 'fix' }));
});
