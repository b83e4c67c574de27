/**
 * Names of the metric families that consumers outside the agent read (the Grafana dashboard, the
 * fleet view). The registering code uses these constants, and deploy/grafana/ is generated from
 * them, so a rename cannot leave the dashboard asking for a metric that no longer exists.
 * Bottom layer: imports nothing.
 */
export const METRIC_NAMES = {
  capabilityUsable: 'vtpm_capability_usable',
  capabilityReasons: 'vtpm_capability_reasons',
  expectedNovaTrait: 'vtpm_expected_nova_trait',
  probeSuccess: 'vtpm_probe_success',
  nodeInfo: 'vtpm_node_info',
  emulationCheckDuration: 'vtpm_emulation_check_duration_seconds',
  emulationCheckSuccess: 'vtpm_emulation_check_success',
  guestsAtRisk: 'vtpm_guests_at_risk',
  guestRestarts: 'vtpm_guest_restarts_total',
  guestRestartFailed: 'vtpm_guest_restart_failed',
  hostBootTimestamp: 'vtpm_host_boot_timestamp_seconds',
  placementTraitDrift: 'vtpm_placement_trait_drift',
  placementOwnedTraitPresent: 'vtpm_placement_owned_trait_present',
  barbicanPreflightGuests: 'vtpm_barbican_preflight_guests',
  barbicanFailures: 'vtpm_barbican_failures_total',
} as const;

export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];
