/**
 * Why Nova (or the agent acting as Nova) could not read a vTPM secret from Barbican. One closed
 * set shared by the preflight and the nova-compute log classifier, so both count into the same
 * `reason` label values and alerts can match either source.
 */
export const barbicanReasons = ['forbidden', 'unauthenticated', 'empty_catalog', 'not_found', 'unavailable', 'other'] as const;
export type BarbicanReason = (typeof barbicanReasons)[number];

/** Where a failure was observed. */
export const failureSources = ['preflight', 'log'] as const;
export type FailureSource = (typeof failureSources)[number];

export function emptyReasonCounts(): Record<BarbicanReason, number> {
  return { forbidden: 0, unauthenticated: 0, empty_catalog: 0, not_found: 0, unavailable: 0, other: 0 };
}

export function isBarbicanReason(value: unknown): value is BarbicanReason {
  return typeof value === 'string' && (barbicanReasons as readonly string[]).includes(value);
}
