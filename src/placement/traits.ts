/**
 * The rules of trait reconciliation, as pure functions: which Nova vTPM traits are drifting
 * from what this host can really run, and which agent-owned traits the provider should carry.
 */
import type { TpmModel, TpmVersion } from '../libvirt/facts.js';
import type { Verdict } from '../verdict.js';

/** The vTPM traits Nova owns (os-traits; TIS/CRB from os-traits 3.1.0 / Nova 2024.2). */
export const NOVA_TPM_TRAITS = ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_TIS', 'COMPUTE_SECURITY_TPM_CRB'] as const;
export type NovaTpmTrait = (typeof NOVA_TPM_TRAITS)[number];

export type TraitState =
  /** Advertised and usable, or neither. */
  | 'consistent'
  /** Nova advertises it, but the local checks say no usable configuration backs it. */
  | 'advertised-not-usable'
  /** A usable configuration exists, but the provider does not advertise it. */
  | 'usable-not-advertised'
  /** This Placement's os-traits does not have the trait: nobody can advertise it; not drift. */
  | 'unknown-to-placement';

export const TRAIT_STATES: readonly TraitState[] = ['consistent', 'advertised-not-usable', 'usable-not-advertised', 'unknown-to-placement'];

export interface TraitAssessment {
  trait: NovaTpmTrait;
  advertised: boolean;
  usable: boolean;
  /** What Nova (2024.2+) would compute from domain capabilities: explains who is wrong. */
  expectedByNova: boolean;
  state: TraitState;
  /** Reason codes that make the matching combinations unusable (empty when usable). */
  reasons: string[];
}

export const VERSION_TRAIT: Record<TpmVersion, NovaTpmTrait> = { '1.2': 'COMPUTE_SECURITY_TPM_1_2', '2.0': 'COMPUTE_SECURITY_TPM_2_0' };
export const MODEL_TRAIT: Record<TpmModel, NovaTpmTrait> = { 'tpm-tis': 'COMPUTE_SECURITY_TPM_TIS', 'tpm-crb': 'COMPUTE_SECURITY_TPM_CRB' };

function combinationsFor(verdict: Verdict, trait: NovaTpmTrait) {
  return verdict.combinations.filter((c) => VERSION_TRAIT[c.version] === trait || MODEL_TRAIT[c.model] === trait);
}

export function isDrift(state: TraitState): boolean {
  return state === 'advertised-not-usable' || state === 'usable-not-advertised';
}

/**
 * Compares the provider's Nova vTPM traits with the verdict. A trait is usable when any TPM
 * version × model combination it stands for passed the local checks.
 */
export function assessTraits(verdict: Verdict, current: ReadonlySet<string>, knownToPlacement: ReadonlySet<string>): TraitAssessment[] {
  return NOVA_TPM_TRAITS.map((trait): TraitAssessment => {
    const combos = combinationsFor(verdict, trait);
    const usable = combos.some((c) => c.usable);
    const advertised = current.has(trait);
    const reasons = usable ? [] : [...new Set(combos.flatMap((c) => c.reasons.filter((r) => r.severity === 'error').map((r) => r.code)))].sort();
    let state: TraitState;
    if (!knownToPlacement.has(trait) && !advertised) state = 'unknown-to-placement';
    else if (advertised && !usable) state = 'advertised-not-usable';
    else if (!advertised && usable) state = 'usable-not-advertised';
    else state = 'consistent';
    return { trait, advertised, usable, expectedByNova: verdict.expectedNovaTraits.includes(trait), state, reasons };
  });
}

/**
 * The combinations the scheduler may send vTPM guests to: the version trait is advertised and,
 * when the provider advertises any model trait (Nova 2024.2+), the model trait too.
 */
export function advertisedCombinations(verdict: Verdict, current: ReadonlySet<string>) {
  return verdict.combinations.filter((c) => isAdvertised(c, current));
}

/** Whether a provider with these traits advertises a TPM version × model (see advertisedCombinations). */
export function isAdvertised(c: { version: TpmVersion; model: TpmModel }, current: ReadonlySet<string>): boolean {
  const modelsAdvertised = current.has('COMPUTE_SECURITY_TPM_TIS') || current.has('COMPUTE_SECURITY_TPM_CRB');
  return current.has(VERSION_TRAIT[c.version]) && (!modelsAdvertised || current.has(MODEL_TRAIT[c.model]));
}

/** Fence while any advertised configuration fails the local checks. */
export function shouldFence(verdict: Verdict, current: ReadonlySet<string>): boolean {
  return advertisedCombinations(verdict, current).some((c) => !c.usable);
}

export function verifiedTraitName(prefix: string, version: TpmVersion, model: TpmModel): string {
  return `${prefix}VERIFIED_TPM_${version.replace('.', '_')}_${model === 'tpm-tis' ? 'TIS' : 'CRB'}`;
}

export interface OwnedTraitOptions {
  ownedPrefix: string;
  fencingTrait: string;
  verifiedTraits: boolean;
}

/** Every owned trait the agent may set, so metrics can report each as present or absent. */
export function managedTraitNames(options: OwnedTraitOptions, verdict: Verdict | null): string[] {
  const names = [options.fencingTrait];
  if (options.verifiedTraits) {
    const combos = verdict?.combinations ?? [
      { version: '1.2' as const, model: 'tpm-tis' as const },
      { version: '2.0' as const, model: 'tpm-tis' as const },
      { version: '2.0' as const, model: 'tpm-crb' as const },
    ];
    for (const c of combos) names.push(verifiedTraitName(options.ownedPrefix, c.version, c.model));
  }
  return names;
}

/** The owned traits the provider should carry now. */
export function desiredOwnedTraits(verdict: Verdict, current: ReadonlySet<string>, options: OwnedTraitOptions): Set<string> {
  const desired = new Set<string>();
  if (shouldFence(verdict, current)) desired.add(options.fencingTrait);
  if (options.verifiedTraits) {
    for (const c of verdict.combinations) if (c.usable) desired.add(verifiedTraitName(options.ownedPrefix, c.version, c.model));
  }
  return desired;
}

export interface TraitPlan {
  /** The full set to PUT: (current − owned) ∪ desired. */
  next: string[];
  add: string[];
  remove: string[];
  changed: boolean;
}

/** Never touches a trait outside the owned prefix: those pass through unchanged. */
export function planTraits(current: Iterable<string>, desiredOwned: ReadonlySet<string>, ownedPrefix: string): TraitPlan {
  const cur = new Set(current);
  for (const d of desiredOwned) if (!d.startsWith(ownedPrefix)) throw new Error(`desired trait ${d} is outside the owned prefix ${ownedPrefix}`);
  const kept = [...cur].filter((t) => !t.startsWith(ownedPrefix));
  const next = [...new Set([...kept, ...desiredOwned])].sort();
  const add = [...desiredOwned].filter((t) => !cur.has(t)).sort();
  const remove = [...cur].filter((t) => t.startsWith(ownedPrefix) && !desiredOwned.has(t)).sort();
  return { next, add, remove, changed: add.length > 0 || remove.length > 0 };
}
