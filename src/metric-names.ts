/**
 * Names of the metric families that consumers outside the agent read (the Grafana dashboard, the
 * fleet view). The registering code uses these constants, and deploy/grafana/ is generated from
 * them, so a rename cannot leave the dashboard asking for a metric that no longer exists.
 * Bottom layer: imports only the prefix.
 */
import { METRIC_PREFIX } from './metric-prefix.js';

export const METRIC_NAMES = {
  capabilityUsable: `${METRIC_PREFIX}capability_usable`,
  capabilityReasons: `${METRIC_PREFIX}capability_reasons`,
  expectedNovaTrait: `${METRIC_PREFIX}expected_nova_trait`,
  probeSuccess: `${METRIC_PREFIX}probe_success`,
  nodeInfo: `${METRIC_PREFIX}node_info`,
  emulationCheckDuration: `${METRIC_PREFIX}emulation_check_duration_seconds`,
  emulationCheckSuccess: `${METRIC_PREFIX}emulation_check_success`,
  guestsAtRisk: `${METRIC_PREFIX}guests_at_risk`,
  guestRestarts: `${METRIC_PREFIX}guest_restarts_total`,
  guestRestartFailed: `${METRIC_PREFIX}guest_restart_failed`,
  hostBootTimestamp: `${METRIC_PREFIX}host_boot_timestamp_seconds`,
  placementTraitDrift: `${METRIC_PREFIX}placement_trait_drift`,
  placementOwnedTraitPresent: `${METRIC_PREFIX}placement_owned_trait_present`,
  barbicanPreflightGuests: `${METRIC_PREFIX}barbican_preflight_guests`,
  barbicanFailures: `${METRIC_PREFIX}barbican_failures_total`,
} as const;

export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];
