/** The Placement section of `vtpm-agent check`, `/status` and `vtpm-agent reconcile`. */
import type { CheckSection } from '../results.js';
import type { ReconcileResult, ReconcileState } from './reconciler.js';

export const SECTION_NAME = 'placement';

export interface SectionContext {
  state: ReconcileState;
  /** For states without a pass (not configured, invalid credentials). */
  detail?: string;
  /** Where the credentials came from, without secrets. */
  cloud?: Record<string, unknown> | null;
  lastSuccessAt?: number | null;
  nextAttemptAt?: number | null;
  consecutiveFailures?: number;
}

export function placementSection(result: ReconcileResult | null, ctx: SectionContext): CheckSection {
  if (ctx.state === 'not-configured') {
    return {
      name: SECTION_NAME,
      ok: null,
      summary: 'no OpenStack credentials configured (openstack.cloud / OS_CLOUD, OS_AUTH_URL, or openstack.auth): Placement is not checked',
      data: { state: ctx.state },
    };
  }
  if (!result) {
    return {
      name: SECTION_NAME,
      ok: ctx.state === 'invalid-config' ? false : null,
      summary: ctx.detail ?? 'the first reconcile has not finished yet',
      data: { state: ctx.state, cloud: ctx.cloud ?? null, detail: ctx.detail ?? null },
    };
  }
  const table = result.assessment
    ? [
        ['trait', 'advertised', 'usable here', 'Nova would report', 'state', 'why not usable'],
        ...result.assessment.map((a) => [
          a.trait,
          a.state === 'unknown-to-placement' ? 'n/a' : a.advertised ? 'yes' : 'no',
          a.usable ? 'yes' : 'no',
          a.expectedByNova ? 'yes' : 'no',
          a.state,
          a.reasons.join(', '),
        ]),
      ]
    : undefined;
  const retry = ctx.nextAttemptAt && result.error ? ` (retry at ${new Date(ctx.nextAttemptAt).toISOString()})` : '';
  return {
    name: SECTION_NAME,
    ok: result.ok,
    summary: `${result.summary}${retry}`,
    ...(table ? { table } : {}),
    data: {
      state: result.state,
      mode: result.mode,
      dryRun: result.dryRun,
      provider: result.provider,
      providerNotes: result.providerNotes,
      microversion: result.microversion,
      generation: result.generation,
      traits: result.traits,
      assessment: result.assessment,
      fence: result.fence,
      plan: result.plan,
      wrote: result.wrote,
      conflicts: result.conflicts,
      createdTraits: result.createdTraits,
      requests: result.requests,
      error: result.error,
      at: new Date(result.at).toISOString(),
      durationSeconds: result.durationSeconds,
      lastSuccessAt: ctx.lastSuccessAt ? new Date(ctx.lastSuccessAt).toISOString() : null,
      consecutiveFailures: ctx.consecutiveFailures ?? 0,
      cloud: ctx.cloud ?? null,
    },
  };
}

/** Plain text for `vtpm-agent reconcile --once`. */
export function renderSection(section: CheckSection): string {
  const mark = section.ok === true ? 'OK  ' : section.ok === false ? 'FAIL' : 'N/A ';
  const lines = [`[${mark}] ${section.name}: ${section.summary}`];
  if (section.table && section.table.length > 0) {
    const widths = section.table[0]!.map((_, i) => Math.max(...section.table!.map((row) => (row[i] ?? '').length)));
    for (const row of section.table) lines.push(`  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}`);
  }
  return lines.join('\n');
}
