/**
 * The whole-cloud verification as pure functions: joins Placement's providers with the agents'
 * verdicts (from Prometheus), counts capacity per TPM version × model, and audits flavors and
 * images against what the fleet can really run.
 */
import { isAdvertised, MODEL_TRAIT, NOVA_TPM_TRAITS, VERSION_TRAIT, verifiedTraitName, type NovaTpmTrait } from '../placement/traits.js';
import type { TpmModel, TpmVersion } from '../libvirt/facts.js';
import { TPM_COMBINATIONS } from '../verdict.js';
import type { Image } from './glance.js';
import type { Flavor } from './nova.js';
import type { FleetProvider } from './placement.js';
import type { AgentView } from './prometheus.js';

export interface Combination {
  version: TpmVersion;
  model: TpmModel;
}

export const comboKey = (c: Combination): string => `${c.version}/${c.model}`;

export type AgentState = 'up' | 'down' | 'missing' | 'not-checked';

export interface HostView {
  provider: string;
  uuid: string;
  /** Nova's COMPUTE_SECURITY_TPM_* traits the provider carries. */
  tpmTraits: string[];
  fenced: boolean;
  advertised: string[];
  /** Combinations the host's own checks passed; null when unknown (no agent verdict, no verified traits). */
  verified: string[] | null;
  verifiedSource: 'agent' | 'placement-verified-traits' | null;
  agent: AgentState;
  /** Scrape target of the agent (job/instance), when one reports this provider. */
  agentTarget: string | null;
  /** Nova traits whose advertisement disagrees with the agent's verdict (only with a verdict). */
  drift: Array<{ trait: NovaTpmTrait; state: 'advertised-not-usable' | 'usable-not-advertised' }>;
  guestsAtRisk: Record<string, number>;
}

export interface CapacityRow {
  version: TpmVersion;
  model: TpmModel;
  /** Hosts whose traits let the scheduler send this configuration to them. */
  advertised: number;
  /** Hosts whose own checks passed for it (agent verdict or verified trait). */
  verified: number;
  /** Hosts with no verdict to count (agent down or missing, no verified trait). */
  unknown: number;
  /** Advertised hosts carrying the fencing trait. */
  fenced: number;
  /** Advertised, verified and not fenced: where a guest of this configuration really lands and works. */
  ready: number;
}

export type FindingKind =
  | 'invalid-value'
  | 'invalid-combination'
  | 'no-verified-host'
  | 'no-advertised-host'
  | 'fencing-not-forbidden'
  | 'secret-security-user'
  | 'host-fenced'
  | 'trait-drift'
  | 'agent-missing'
  | 'agent-down'
  | 'guests-at-risk';

export interface Finding {
  kind: FindingKind;
  /** `flavor NAME`, `image NAME`, `host NAME`. */
  subject: string;
  id: string;
  detail: string;
}

/** A flavor's or image's vTPM request, as Nova reads it. */
export interface TpmRequest {
  source: 'flavor' | 'image';
  id: string;
  name: string;
  version: string | null;
  model: string | null;
  /** Flavors only (hw:tpm_secret_security, Nova 2026.1+). */
  secretSecurity: string | null;
  /** Flavors only: the value of trait:<fencing trait>. */
  fencingTraitSpec: string | null;
}

export function flavorRequest(f: Flavor, fencingTrait: string): TpmRequest {
  const s = f.extraSpecs;
  return {
    source: 'flavor',
    id: f.id,
    name: f.name,
    version: s['hw:tpm_version'] ?? null,
    model: s['hw:tpm_model'] ?? null,
    secretSecurity: s['hw:tpm_secret_security'] ?? null,
    fencingTraitSpec: s[`trait:${fencingTrait}`] ?? null,
  };
}

export function imageRequest(i: Image): TpmRequest {
  return { source: 'image', id: i.id, name: i.name, version: i.properties.hw_tpm_version ?? null, model: i.properties.hw_tpm_model ?? null, secretSecurity: null, fencingTraitSpec: null };
}

export const requestsTpm = (r: TpmRequest): boolean => r.version !== null || r.model !== null;

const VERSIONS = new Set(['1.2', '2.0']);
const MODELS = new Set(['tpm-tis', 'tpm-crb']);
const SECRET_SECURITY = new Set(['user', 'host', 'deployment']);

/** The configuration a request asks for, or why Nova would refuse it. Model defaults to tpm-tis. */
export function requestedCombination(r: TpmRequest): { ok: true; combo: Combination } | { ok: false; kind: 'invalid-value' | 'invalid-combination'; detail: string } {
  const [v, m] = r.source === 'flavor' ? ['hw:tpm_version', 'hw:tpm_model'] : ['hw_tpm_version', 'hw_tpm_model'];
  if (r.version === null) return { ok: false, kind: 'invalid-combination', detail: `${m}=${r.model} without ${v}: Nova refuses to boot it` };
  if (!VERSIONS.has(r.version)) return { ok: false, kind: 'invalid-value', detail: `${v}=${r.version} is not a TPM version Nova knows (1.2 or 2.0)` };
  const model = r.model ?? 'tpm-tis';
  if (!MODELS.has(model)) return { ok: false, kind: 'invalid-value', detail: `${m}=${model} is not a TPM model Nova knows (tpm-tis or tpm-crb)` };
  if (r.version === '1.2' && model === 'tpm-crb') return { ok: false, kind: 'invalid-combination', detail: `${v}=1.2 with ${m}=tpm-crb: CRB exists only for TPM 2.0 (libvirt refuses it)` };
  return { ok: true, combo: { version: r.version as TpmVersion, model: model as TpmModel } };
}

function matchAgent(p: FleetProvider, agents: AgentView[]): AgentView | null {
  // The compute node UUID is the provider UUID; the provider name is the fallback (Nova < 2023.1 has no compute_id).
  const byUuid = agents.filter((a) => a.computeNodeUuid === p.uuid);
  const mine = byUuid.length ? byUuid : agents.filter((a) => a.providerName === p.name);
  // Several targets for one provider (a renamed or moved agent): the one that answers wins.
  return mine.find((a) => a.up) ?? mine[0] ?? null;
}

/** One host: what Placement advertises next to what its agent (or its verified traits) says. */
export function hostView(p: FleetProvider, agents: AgentView[] | null, ownedPrefix: string, knownTraits: ReadonlySet<string>): HostView {
  const traits = new Set(p.traits);
  const advertised = TPM_COMBINATIONS.filter((c) => isAdvertised(c, traits));
  const agent = agents ? matchAgent(p, agents) : null;
  const agentState: AgentState = agents === null ? 'not-checked' : !agent ? 'missing' : agent.up ? 'up' : 'down';
  let verified: Combination[] | null = null;
  let verifiedSource: HostView['verifiedSource'] = null;
  if (agent?.up && agent.usable.length > 0) {
    const usable = agent.usable;
    verified = TPM_COMBINATIONS.filter((c) => usable.some((u) => u.usable && u.version === c.version && u.model === c.model));
    verifiedSource = 'agent';
  } else if (TPM_COMBINATIONS.some((c) => traits.has(verifiedTraitName(ownedPrefix, c.version, c.model)))) {
    verified = TPM_COMBINATIONS.filter((c) => traits.has(verifiedTraitName(ownedPrefix, c.version, c.model)));
    verifiedSource = 'placement-verified-traits';
  }
  const drift: HostView['drift'] = [];
  if (verifiedSource === 'agent' && verified) {
    for (const trait of NOVA_TPM_TRAITS) {
      const stands = TPM_COMBINATIONS.filter((c) => VERSION_TRAIT[c.version] === trait || MODEL_TRAIT[c.model] === trait);
      const usable = stands.some((c) => verified!.some((v) => comboKey(v) === comboKey(c)));
      const has = traits.has(trait);
      // A trait this Placement does not know cannot be advertised by anyone: not drift.
      if (has && !usable) drift.push({ trait, state: 'advertised-not-usable' });
      else if (!has && usable && knownTraits.has(trait)) drift.push({ trait, state: 'usable-not-advertised' });
    }
  }
  return {
    provider: p.name,
    uuid: p.uuid,
    tpmTraits: p.traits.filter((t) => (NOVA_TPM_TRAITS as readonly string[]).includes(t)),
    fenced: p.fenced,
    advertised: advertised.map(comboKey),
    verified: verified?.map(comboKey) ?? null,
    verifiedSource,
    agent: agentState,
    agentTarget: agent?.target ?? null,
    drift,
    guestsAtRisk: agent?.up ? agent.guestsAtRisk : {},
  };
}

export function capacity(hosts: HostView[]): CapacityRow[] {
  return TPM_COMBINATIONS.map((c) => {
    const key = comboKey(c);
    const adv = hosts.filter((h) => h.advertised.includes(key));
    return {
      version: c.version,
      model: c.model,
      advertised: adv.length,
      verified: hosts.filter((h) => h.verified?.includes(key)).length,
      unknown: hosts.filter((h) => h.verified === null).length,
      fenced: adv.filter((h) => h.fenced).length,
      ready: adv.filter((h) => !h.fenced && h.verified?.includes(key)).length,
    };
  });
}

export interface AuditOptions {
  fencingTrait: string;
  /** Fencing is in use (the fencing trait exists in Placement): vTPM flavors must forbid it. */
  fencingEnabled: boolean;
  /** Some host has a verdict (agent or verified trait): judge by verified hosts, else by advertised ones. */
  verdictsAvailable: boolean;
}

/** Findings about flavors and images: invalid requests, configurations nobody can run, fencing and secret mode. */
export function auditRequests(requests: TpmRequest[], cap: CapacityRow[], options: AuditOptions): Finding[] {
  const findings: Finding[] = [];
  const anyVerdict = options.verdictsAvailable;
  for (const r of requests.filter(requestsTpm)) {
    const subject = `${r.source} ${r.name}`;
    const add = (kind: FindingKind, detail: string) => findings.push({ kind, subject, id: r.id, detail });
    const wanted = requestedCombination(r);
    if (!wanted.ok) add(wanted.kind, wanted.detail);
    else {
      const row = cap.find((c) => c.version === wanted.combo.version && c.model === wanted.combo.model)!;
      const key = comboKey(wanted.combo);
      if (anyVerdict && row.ready === 0) {
        add(
          'no-verified-host',
          `asks for TPM ${key}; no host both advertises it and passed its own checks (${row.advertised} advertise, ${row.verified} verified, ${row.fenced} fenced)${row.unknown ? `; ${row.unknown} host(s) without a verdict` : ''}`,
        );
      } else if (!anyVerdict && row.advertised - row.fenced === 0) {
        add('no-advertised-host', `asks for TPM ${key}; no unfenced host advertises it (no host verdicts available: pass --prometheus to check the agents)`);
      }
    }
    if (r.source === 'flavor' && options.fencingEnabled && r.fencingTraitSpec !== 'forbidden') {
      add(
        'fencing-not-forbidden',
        `vTPM flavor without trait:${options.fencingTrait}=forbidden${r.fencingTraitSpec ? ` (it is ${r.fencingTraitSpec})` : ''}: the scheduler may still pick fenced hosts`,
      );
    }
    if (r.secretSecurity !== null && !SECRET_SECURITY.has(r.secretSecurity)) {
      add('invalid-value', `hw:tpm_secret_security=${r.secretSecurity} is not user, host or deployment`);
    } else if (r.secretSecurity === 'user') {
      add(
        'secret-security-user',
        "hw:tpm_secret_security=user: after a host reboot Nova cannot fetch the vTPM secret without the user's token, so these guests stay down unless Barbican lets Nova's service user read the secrets",
      );
    }
  }
  return findings;
}

/** Findings about hosts: fenced, drifting, agents missing or down, guests at risk. */
export function auditHosts(hosts: HostView[]): Finding[] {
  const findings: Finding[] = [];
  for (const h of hosts) {
    const add = (kind: FindingKind, detail: string) => findings.push({ kind, subject: `host ${h.provider}`, id: h.uuid, detail });
    if (h.fenced) add('host-fenced', 'carries the fencing trait: an advertised vTPM configuration fails its checks');
    if (h.drift.length) add('trait-drift', h.drift.map((d) => `${d.trait} ${d.state}`).join(', '));
    if (h.agent === 'missing') add('agent-missing', 'no vtpm-agent in Prometheus reports this provider (vtpm_node_info)');
    if (h.agent === 'down') add('agent-down', `its agent ${h.agentTarget} is not scraped successfully (up == 0)`);
    const risk = Object.entries(h.guestsAtRisk);
    if (risk.length) add('guests-at-risk', risk.map(([reason, n]) => `${n} ${reason}`).join(', '));
  }
  return findings;
}
