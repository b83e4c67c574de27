import type { Registry } from 'prom-client';

/**
 * A module that owns some metrics. It registers them once; their `collect()` callbacks read the
 * agent's in-memory state, so a scrape never runs a probe or touches the network.
 */
export type MetricsRegistrar = (registry: Registry) => void;

/** The one metric prefix. */
export const METRIC_PREFIX = 'vtpm_';
